"""The dataset catalog: datasets and their URIs, searched by attributes, time and footprint.

``search``/``count``/``get_dataset`` read (:mod:`terrapipe.catalog.query`),
``save_datasets`` and ``record_download`` write (:mod:`terrapipe.catalog.ingest`), and
:mod:`terrapipe.catalog.harvest` fills the catalog from folders and STAC (imported on
demand: it loads rasterio and pyogrio).
"""

from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.ingest import SaveResult, record_download, save_datasets
from terrapipe.catalog.query import count, get_dataset, search

__all__ = [
    "Dataset",
    "DatasetURI",
    "SaveResult",
    "count",
    "get_dataset",
    "record_download",
    "save_datasets",
    "search",
]
