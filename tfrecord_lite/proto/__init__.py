"""Generated protobuf modules for ``tensorflow.Example`` (see ``proto/generate.py``).

Do not edit ``*_pb2.py`` / ``*_pb2.pyi`` by hand: run ``make proto``.
"""
