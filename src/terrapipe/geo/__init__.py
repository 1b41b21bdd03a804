"""Pure geo science: ROI, naming, raster/vector operations, zonal stats, hydrology, NDVI.

Functions take arrays, GeoDataFrames, transforms and CRSs; file I/O is a thin separate
step. Nothing here imports the engine, the database or the web layer.
"""
