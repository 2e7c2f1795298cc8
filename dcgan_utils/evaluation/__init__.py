"""Measuring generated images: classifier features, coverage, Frechet distance, Inception FID/KID, failure meters.
Imports the engine only."""
