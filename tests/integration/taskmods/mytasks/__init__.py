"""The README's task package: ``from mytasks import usertasks1, usertasks2``."""
