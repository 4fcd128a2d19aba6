"""Thin entry point: the same CLI as `python -m jaxrl.train`."""

from jaxrl.train import main

if __name__ == "__main__":
    main()
