"""Makhzani & Frey (2013/2014), k-Sparse Autoencoders (ICLR 2014, arXiv:1312.5663), on MNIST.

A k-sparse autoencoder: 1000 linear hidden units with tied weights, of which only the k = 25
largest are kept per example (k annealed from a larger value during the first half of training),
trained on squared reconstruction error. Its features — the α·k = 75 largest units (α = 3) — are
fed to logistic regression (the encoder frozen); the network is also fine-tuned as a whole.
Metric: test classification error (%).

Also draws the k-sparse filters, digits beside their k-sparse reconstructions, and the error on
the eval split after each epoch of logistic regression and of fine-tuning
(``finetune_curves.png``; with ``--validation`` the best epochs are rows too).

    python experiments/makhzani2013.py               # full run: train on 60k, report test
    python experiments/makhzani2013.py --validation  # model selection: 50k train, 10k held out
    python experiments/makhzani2013.py --quick       # CI smoke run (subset, few epochs)
    python experiments/makhzani2013.py --set k=40 --set alpha=2
    python experiments/makhzani2013.py --set checkpoint_dir=experiments/runs/makhzani2013/ckpt
    python experiments/makhzani2013.py --validation \\
        --set checkpoint_dir=experiments/runs/makhzani2013_validation/ckpt

With ``checkpoint_dir`` the pretraining (``<checkpoint_dir>/pretrain/layer_0``), the logistic
regression (``<checkpoint_dir>/classifier``) and the fine-tuning (``<checkpoint_dir>/finetune``)
save after every epoch, and a rerun of the same command resumes them. One ``checkpoint_dir``
per command.
"""

from __future__ import annotations

import dataclasses

import jax

import jaxae
from jaxae import experiment
from jaxae.chunked import chunked_map
from jaxae.experiment import Run, load_mnist_splits, parse
from jaxae.recipes import AutoencoderConfig, reconstruct_layer

# The 1.35 % of the unsupervised (logistic regression) row is the number as commonly cited for
# 1000 hidden units, k = 25; it could not be re-checked against the paper's table here.
PAPER = (
    "Makhzani & Frey 2014, ICLR (arXiv:1312.5663), k=25, 1000 units: as commonly cited; not "
    "verified against the paper's table"
)


@dataclasses.dataclass(frozen=True)
class Config:
    """Defaults: the paper's model (1000 linear units, tied, k = 25, α = 3, k annealed from 100
    over the first half of training). The pretraining was chosen on the validation split
    (train[:50000] → train[50000:]; logistic regression's error in %, 50 classifier epochs, no
    fine-tuning): Adam at 1e-3 / 3e-3 for 30 epochs 2.22 / 3.88, annealed from k = 400 2.12;
    the paper's SGD (momentum 0.9) at 1e-3 / 1e-4 3.97 / 4.03; Adam at 1e-4 / 3e-4 2.02 / 1.73;
    Adam 3e-4 for 60 / 120 epochs 1.63 / 1.86 (60: the defaults); annealed from k = 400
    instead of 100 (Adam 3e-4, 60 epochs) 1.75; SGD (momentum 0.9) at 1e-2 / 3e-2 for 60
    epochs 2.65 / 1.91, at 3e-2 for 150 epochs 1.84, at 1e-1 diverged within 10 steps. A high
    Adam rate leaves many units' filters noisy (units that rarely win the top-k take large
    Adam steps), and so does a longer anneal from a larger k; SGD leaves them at their random
    start, fewer the higher its rate. With the defaults, 80 of the 1000 units never win the
    top 25 on the training images and 153 win for fewer than 0.1 % of them. The logistic
    regression is not what limits the error: on the default features, its rate 3e-4 (100
    epochs) / 3e-3 / 1e-2 (100 epochs) gives 1.60 / 1.69 / 2.06, AdamW weight decay
    (``classifier_weight_decay``) 0.01 / 0.1 / 1 gives 1.62 / 1.68 / 2.40 and SGD (momentum
    0.9) at 0.1 gives 1.68, against the defaults' 1.63. The first author's public notebook
    (github.com/makhzani/convnet, "K-Sparse Autoencoder.ipynb") trains with ReLU before the
    top-k, weights drawn with standard deviation 0.01, SGD at 0.01 with momentum 0.9, batch
    128, k = 70 fixed and a default of up to 10,000 epochs; it runs no classifier and prints
    no error, so it does not show the paper's budget. Its ReLU before the top-k is
    ``activation=relu``. (Two earlier runs with that setting, 1.63 with Adam 3e-4 and 2.65 with
    SGD 1e-2, equal to the linear runs, did not test it: until a fix of 2026-12-05 a k-sparse
    layer ignored ``activation`` and stayed linear.) With the ReLU applied (2026-12-05, the
    defaults otherwise): 1.63, the same as the linear units; of the α·k = 75 units kept, 68 are
    positive on average, so the ReLU changes the features but not the error. Not yet tried: its
    initialisation and its far longer SGD budget. Fine-tuning settings are not chosen on
    validation (it has no paper number to meet)."""

    hidden: int = 1000
    # The hidden units before the top-k: "linear" (the paper) or "relu" (the first author's
    # public notebook, see above).
    activation: str = "linear"
    k: int = 25
    initial_k: int = 100
    alpha: float = 3.0
    pretrain_epochs: int = 60
    pretrain_lr: float = 3e-4
    pretrain_optimizer: str = "adam"  # or "sgd" (heavy-ball `momentum`), at a constant rate
    momentum: float = 0.9
    batch_size: int = 100
    classifier_epochs: int = 50
    classifier_lr: float = 1e-3
    classifier_weight_decay: float = 0.0  # of the classifier's weights (AdamW's decoupled decay)
    finetune: bool = True
    finetune_epochs: int = 30
    finetune_lr: float = 1e-3
    train_examples: int | None = None
    eval_examples: int | None = None
    # The fits save here (<checkpoint_dir>/pretrain/layer_0, /classifier, /finetune) and a rerun
    # of the same command resumes them. One checkpoint_dir per command.
    checkpoint_dir: str | None = None


QUICK = dataclasses.replace(
    Config(),
    hidden=500,
    pretrain_epochs=4,
    pretrain_lr=3e-3,
    classifier_epochs=8,
    classifier_lr=3e-3,
    finetune_epochs=4,
    finetune_lr=3e-3,
    train_examples=3000,
    eval_examples=1000,
)


def k_sparse_config(config: Config) -> AutoencoderConfig:
    return AutoencoderConfig(
        activation=config.activation,
        loss="squared_error",
        output_activation="linear",
        k=config.k,
        k_initial=min(config.initial_k, config.hidden),
        k_anneal_epochs=max(1, config.pretrain_epochs // 2),
        k_alpha=config.alpha,
        epochs=config.pretrain_epochs,
        batch_size=config.batch_size,
        optimizer=experiment.named_optimizer(
            config.pretrain_optimizer,
            config.pretrain_lr,
            momentum=config.momentum,
            setting="--set pretrain_optimizer",
        ),
    )


def main(argv: list[str] | None = None) -> dict:
    args, config = parse(__file__, __doc__, argv, config=Config(), quick=QUICK, validation=True)
    name = "makhzani2013_validation" if args.validation else "makhzani2013"
    run = Run(name, args, config)
    progress = not args.no_progress
    data = load_mnist_splits(args.validation, config.train_examples, config.eval_examples)
    run.log.info("train %s, %s %s", data.x_train.shape, data.name, data.x_eval.shape)

    key = jax.random.key(args.seed)
    pretrain_key, classifier_key, finetune_key, noise_key = jax.random.split(key, 4)
    layers = jaxae.pretrain_stack(
        data.x_train,
        (784, config.hidden),
        k_sparse_config(config),
        key=pretrain_key,
        checkpoint_dir=experiment.checkpoint_subdir(config.checkpoint_dir, "pretrain"),
        progress=progress,
    )
    model, params = jaxae.stack_encoders(layers, n_classes=10)
    label = f"k-sparse AE ({config.hidden} units, k={config.k}, α={config.alpha:g})"

    def cosine_adam(lr, epochs, weight_decay=0.0):
        steps = epochs * (len(data.x_train) // config.batch_size)
        return experiment.cosine_optimizer("adam", lr, steps, weight_decay=weight_decay)

    # The eval split's error after each epoch (fit's eval_fn, kept in the history). For the
    # logistic regression, the frozen encoder's eval features are computed once: an epoch's
    # evaluation then costs a pass of the top layer only, as its training does.
    eval_features = chunked_map(model.features, data.x_eval, args=(params,))
    top = jaxae.StackedClassifier(model.sizes[-2:], (), (), ())

    def classifier_error(p):
        top_params = {"layers": [], "classifier": p["classifier"]}
        return {"error": jaxae.classification_error(top, top_params, eval_features, data.y_eval)}

    def finetune_error(p):
        return {"error": jaxae.classification_error(model, p, data.x_eval, data.y_eval)}

    logistic, logistic_history = jaxae.finetune_classifier(
        model,
        params,
        data.x_train,
        data.y_train,
        key=classifier_key,
        epochs=config.classifier_epochs,
        batch_size=config.batch_size,
        optimizer=cosine_adam(
            config.classifier_lr, config.classifier_epochs, config.classifier_weight_decay
        ),
        train_encoders=False,
        eval_fn=classifier_error,
        checkpoint_dir=experiment.checkpoint_subdir(config.checkpoint_dir, "classifier"),
        progress=progress,
    )
    logistic_label = label + " + logistic regression"
    run.record(
        logistic_label,
        "classification error (%)",
        100 * jaxae.classification_error(model, logistic, data.x_eval, data.y_eval),
        split=data.name,
        paper_value=1.35,
        paper_source=PAPER,
    )
    curves = {logistic_label: [100 * row["error"] for row in logistic_history]}
    experiment.record_best_epoch(
        run, logistic_label, curves[logistic_label], split=data.name, stage="classifier"
    )
    if config.finetune:
        _, tuned_history = jaxae.finetune_classifier(
            model,
            logistic,
            data.x_train,
            data.y_train,
            key=finetune_key,
            epochs=config.finetune_epochs,
            batch_size=config.batch_size,
            optimizer=cosine_adam(config.finetune_lr, config.finetune_epochs),
            eval_fn=finetune_error,
            checkpoint_dir=experiment.checkpoint_subdir(config.checkpoint_dir, "finetune"),
            progress=progress,
        )
        tuned_label = label + ", fine-tuned"
        run.record(
            tuned_label,
            "classification error (%)",
            100 * tuned_history[-1]["error"],  # finetune_error after the last epoch
            split=data.name,
            paper_value=None,  # the paper's fine-tuned number could not be checked here
            paper_source="Makhzani & Frey 2014 report a fine-tuned result; value not re-checked",
        )
        curves[tuned_label] = [100 * row["error"] for row in tuned_history]
        experiment.record_best_epoch(run, tuned_label, curves[tuned_label], split=data.name)
    figure = experiment.error_curves_figure(
        curves,
        split=data.name,
        paper_values={logistic_label: 1.35},
        xlabel="epoch (logistic regression: of the classifier; fine-tuned: of fine-tuning)",
    )
    run.save_figure(figure, "finetune_curves.png")

    features = chunked_map(model.features, data.x_eval[:1000], args=(params,))
    run.record(
        label,
        "active units per example (α·k rule)",
        float((features != 0).sum(axis=1).mean()),
        split=experiment.sliced_split_name(data.name, len(data.x_eval), 1000),
    )
    run.save_figure(
        experiment.filters_figure({f"k-sparse, k={config.k}": layers[0].encoder["w"]}),
        "filters.png",
    )
    _, recon = reconstruct_layer(layers[0], data.x_eval[:10], key=noise_key)
    rows = {"digits": data.x_eval[:10], f"k={config.k} output": recon}
    run.save_figure(experiment.image_rows_figure(rows), "reconstructions.png")
    run.finish()
    return run.metrics


if __name__ == "__main__":
    main()
