"""Named objects: any Python object under a name in a namespace, shared between
processes through the store and read in place (brain-plasma's job without a server).
:mod:`.mapping` is the API (``adc.objects(namespace)``, an :class:`Objects` mapping, and
the namespaces of a store); :mod:`.codecs` stores each kind of object as Arrow data.

This subpackage is not called ``objects``: ``adc.objects`` is a function, and importing a
submodule of that name would replace it on the package."""

from .codecs import decode, encode
from .mapping import Objects, capacity, create_namespace, namespaces, objects, remove_namespace

__all__ = ["Objects", "capacity", "create_namespace", "decode", "encode", "namespaces", "objects", "remove_namespace"]
