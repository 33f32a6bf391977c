"""``python -m advisor.cli``: the ``advisor`` command."""

from advisor.cli.commands import main

if __name__ == "__main__":
    main()
