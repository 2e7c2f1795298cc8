"""Notebook aids: theory, toy games, exercise checkers, figures, the live view, the latent explorer and the course
build. They import the engine and the evaluation; nothing imports them back."""
