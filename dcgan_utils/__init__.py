"""Helper package of the DCGAN course: device and seeding, data, models, losses and the notebook runner."""

__version__ = "0.1.0"
