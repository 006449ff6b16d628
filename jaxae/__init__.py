"""jaxae: autoencoders and restricted Boltzmann machines as pure JAX functions."""

from jaxae import data, losses, parallel, pca, rbm, retrieval, text
from jaxae.losses import sigmoid_cross_entropy, softmax_cross_entropy, squared_error
from jaxae.models.deep import PretrainConfig, RBMLayer, greedy_pretrain, propagate, unroll
from jaxae.models.mlp import MLPAutoencoder, untie
from jaxae.pca import (
    PCA,
    fit_pca,
    pca_decode,
    pca_encode,
    principal_angle_cosines,
    principal_components_from_decoder,
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
    "MLPAutoencoder",
    "NonFiniteError",
    "PCA",
    "PretrainConfig",
    "RBMLayer",
    "TrainState",
    "data",
    "fit",
    "fit_pca",
    "gradients_of_loss",
    "greedy_pretrain",
    "init_train_state",
    "losses",
    "make_train_step",
    "parallel",
    "pca",
    "pca_decode",
    "pca_encode",
    "per_example_mean",
    "principal_angle_cosines",
    "principal_components_from_decoder",
    "propagate",
    "rbm",
    "retrieval",
    "sigmoid_cross_entropy",
    "softmax_cross_entropy",
    "squared_error",
    "text",
    "unroll",
    "untie",
]
