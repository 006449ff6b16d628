"""Training recipes above the models: each a sequence of :func:`jaxae.fit` calls with a loss or
gradient estimator and an Optax transformation, passing ``fit``'s options through.

- :mod:`jaxae.recipes.rbm_stack`: greedy RBM pretraining (Hinton & Salakhutdinov 2006).
- :mod:`jaxae.recipes.autoencoder_stack`: greedy stacking of any autoencoder kind (and RBMs).
- :mod:`jaxae.recipes.finetune`: the stack under a softmax, fine-tuned on labels.
- :mod:`jaxae.recipes.deep_autoencoder`: an unrolled stack fine-tuned on its reconstructions.
- :mod:`jaxae.recipes.layers`: :class:`PretrainedLayer`, :func:`encode_layers` and
  :func:`check_layer_fingerprint`.
"""

from jaxae.recipes.autoencoder_stack import (
    DEFAULT_OPTIMIZER,
    AutoencoderConfig,
    layer_autoencoder,
    pretrain_layer,
    pretrain_stack,
    reconstruct_layer,
    regularized_loss,
)
from jaxae.recipes.deep_autoencoder import (
    ReconstructionLoss,
    adamw_cosine,
    finetune_autoencoder,
    per_image_squared_error,
    reconstruction_error,
    weighted_squared_error,
)
from jaxae.recipes.finetune import (
    StackedClassifier,
    classification_error,
    finetune_classifier,
    stack_encoders,
)
from jaxae.recipes.layers import (
    PretrainedLayer,
    apply_encoder,
    check_layer_fingerprint,
    encode_layers,
)
from jaxae.recipes.rbm_stack import (
    ContrastiveDivergence,
    RBMConfig,
    hinton_rbm_optimizer,
    pretrain_rbm_stack,
    rbm_optimizer,
    train_rbm,
)

__all__ = [
    "DEFAULT_OPTIMIZER",
    "AutoencoderConfig",
    "ContrastiveDivergence",
    "PretrainedLayer",
    "RBMConfig",
    "ReconstructionLoss",
    "adamw_cosine",
    "finetune_autoencoder",
    "per_image_squared_error",
    "reconstruction_error",
    "weighted_squared_error",
    "StackedClassifier",
    "apply_encoder",
    "check_layer_fingerprint",
    "classification_error",
    "encode_layers",
    "finetune_classifier",
    "hinton_rbm_optimizer",
    "layer_autoencoder",
    "pretrain_layer",
    "pretrain_rbm_stack",
    "pretrain_stack",
    "rbm_optimizer",
    "reconstruct_layer",
    "regularized_loss",
    "stack_encoders",
    "train_rbm",
]
