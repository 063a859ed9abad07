"""Drop-in replacements for other libraries' APIs on allye_data_connector's core.

- :mod:`.ataraxis`: ``SharedMemoryArray``, ``YamlConfig``, ``DataLogger`` and
  ``LogPackage`` of ataraxis-data-structures (switch with one import).
- :mod:`.brain_plasma`: brain-plasma's ``Brain`` on named objects (no Plasma server).
- :mod:`.panoply`: panoply's ``SDK`` (``write``/``on``) on a :class:`~..streams.Writer`,
  and its ``DataSource`` (run it with ``adc.load``).
- :mod:`.pullframe`: pullframe's ``pullframe(hosts, directory, sync_timeout)`` context
  manager (``load``/``save``) on Arrow Flight peers (:mod:`..remote`).
"""
