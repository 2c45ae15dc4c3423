"""``python -m evostim``: the same command as ``evostim``."""

from evostim.cli import main

if __name__ == "__main__":
    main()
