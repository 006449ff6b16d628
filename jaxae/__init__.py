"""jaxae: autoencoders and restricted Boltzmann machines as pure JAX functions."""

from jaxae import data, losses, noise, parallel, pca, rbm, regularizers
from jaxae.losses import sigmoid_cross_entropy, softmax_cross_entropy, squared_error
from jaxae.models.deep import PretrainConfig, RBMLayer, greedy_pretrain, propagate, unroll
from jaxae.models.mlp import MLPAutoencoder, untie
from jaxae.models.stacked import (
    LayerConfig,
    PretrainedLayer,
    StackedClassifier,
    classification_error,
    encode_layer,
    features_of,
    finetune_classifier,
    greedy_layerwise_pretrain,
    pretrain_layer,
    stack_encoders,
)
from jaxae.noise import gaussian_noise, masking_noise, salt_and_pepper_noise
from jaxae.pca import (
    PCA,
    fit_pca,
    pca_decode,
    pca_encode,
    principal_angle_cosines,
    principal_components_from_decoder,
)
from jaxae.regularizers import (
    contractive_penalty,
    k_sparse,
    k_sparse_schedule,
    kl_sparsity_penalty,
    l1_activity,
    sigmoid_contractive_penalty,
    weight_decay,
)
from jaxae.train import (
    FitResult,
    NonFiniteError,
    TrainState,
    fit,
    gradients_of_loss,
    init_train_state,
    make_train_step,
    per_example_mean,
)

__version__ = "0.1.0"

__all__ = [
    "FitResult",
    "LayerConfig",
    "MLPAutoencoder",
    "NonFiniteError",
    "PCA",
    "PretrainConfig",
    "PretrainedLayer",
    "RBMLayer",
    "StackedClassifier",
    "TrainState",
    "classification_error",
    "contractive_penalty",
    "data",
    "encode_layer",
    "features_of",
    "finetune_classifier",
    "fit",
    "fit_pca",
    "gaussian_noise",
    "gradients_of_loss",
    "greedy_layerwise_pretrain",
    "greedy_pretrain",
    "init_train_state",
    "k_sparse",
    "k_sparse_schedule",
    "kl_sparsity_penalty",
    "l1_activity",
    "losses",
    "make_train_step",
    "masking_noise",
    "noise",
    "parallel",
    "pca",
    "pca_decode",
    "pca_encode",
    "per_example_mean",
    "pretrain_layer",
    "principal_angle_cosines",
    "principal_components_from_decoder",
    "propagate",
    "rbm",
    "regularizers",
    "salt_and_pepper_noise",
    "sigmoid_contractive_penalty",
    "sigmoid_cross_entropy",
    "softmax_cross_entropy",
    "squared_error",
    "stack_encoders",
    "unroll",
    "untie",
    "weight_decay",
]
