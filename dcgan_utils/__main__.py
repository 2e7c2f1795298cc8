"""`python -m dcgan_utils train|sample`: see dcgan_utils.cli."""

from dcgan_utils.cli import main

main()
