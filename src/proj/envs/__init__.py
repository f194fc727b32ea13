"""Environment backends (local, virtualenv, conda, docker) behind one small interface."""
