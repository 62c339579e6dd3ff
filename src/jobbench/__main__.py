"""``python -m jobbench`` runs the command line."""

from jobbench.cli import main

if __name__ == "__main__":
    main()
