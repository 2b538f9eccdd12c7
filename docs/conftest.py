"""pytest collects nothing here: docs/gallery/ holds build copies of the notebooks
(nbval would run them a second time) and _build/ the built site. The documentation is
tested by tests/test_docs.py."""

collect_ignore_glob = ["*"]
