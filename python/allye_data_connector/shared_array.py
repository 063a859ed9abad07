"""The import path of shared arrays before they moved to :mod:`.arrays`, kept because the
extension imports ``HolderDiedWarning`` from it (``rust/allye-py/src/arrays.rs``) and
pickles of handles made then name ``_reopen`` here. Import from
``allye_data_connector.arrays``."""

from .arrays.shared_array import HolderDiedWarning, SharedArray, _reopen, list_arrays

__all__ = ["HolderDiedWarning", "SharedArray", "_reopen", "list_arrays"]
