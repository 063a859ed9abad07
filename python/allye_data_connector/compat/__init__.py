"""Drop-in replacements for other libraries' APIs on allye_data_connector's core.

- :mod:`.ataraxis`: ``SharedMemoryArray`` and ``YamlConfig`` of ataraxis-data-structures
  (switch with one import; ``DataLogger`` is to follow in the same module).
- :mod:`.pullframe`: pullframe's ``pullframe(hosts, directory, sync_timeout)`` context
  manager (``load``/``save``) on Arrow Flight peers (:mod:`..remote`).
"""
