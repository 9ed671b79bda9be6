"""Generative lab: VAE, conv VAE, beta-VAE and conditional VAE on Fashion-MNIST, FID, controllability."""
