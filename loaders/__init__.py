"""Pure parsers: each module turns the bytes of one source format into frozen records.

No module here touches the database; ``loaders.fetch`` is the only one that touches the network.
"""
