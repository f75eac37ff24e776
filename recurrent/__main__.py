"""`python -m recurrent` runs the command line, the same as the `recurrent` script."""
from ._console import main

if __name__ == "__main__":
    main()
