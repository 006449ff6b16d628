"""jaxae: autoencoders and restricted Boltzmann machines as pure JAX functions."""

from jaxae import data, losses, parallel, pca, rbm, retrieval, text, variational
from jaxae.losses import sigmoid_cross_entropy, softmax_cross_entropy, squared_error
from jaxae.models.deep import PretrainConfig, RBMLayer, greedy_pretrain, propagate, unroll
from jaxae.models.mlp import MLPAutoencoder, untie
from jaxae.models.vae import MLPVAE, ConvVAE
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
from jaxae.variational import (
    active_units,
    bernoulli_log_likelihood,
    binarize,
    diagonal_gaussian_log_density,
    elbo,
    gaussian_kl_to_standard_normal,
    gaussian_log_likelihood,
    importance_log_weights,
    importance_sampled_log_likelihood,
    iwae_bound,
    reparameterize,
    standard_normal_log_density,
    variational_loss,
)

__version__ = "0.1.0"

__all__ = [
    "ConvVAE",
    "FitResult",
    "MLPAutoencoder",
    "MLPVAE",
    "NonFiniteError",
    "PCA",
    "PretrainConfig",
    "RBMLayer",
    "TrainState",
    "active_units",
    "bernoulli_log_likelihood",
    "binarize",
    "data",
    "diagonal_gaussian_log_density",
    "elbo",
    "fit",
    "fit_pca",
    "gaussian_kl_to_standard_normal",
    "gaussian_log_likelihood",
    "gradients_of_loss",
    "greedy_pretrain",
    "importance_log_weights",
    "importance_sampled_log_likelihood",
    "init_train_state",
    "iwae_bound",
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
    "reparameterize",
    "retrieval",
    "sigmoid_cross_entropy",
    "softmax_cross_entropy",
    "squared_error",
    "standard_normal_log_density",
    "text",
    "unroll",
    "untie",
    "variational",
    "variational_loss",
]
