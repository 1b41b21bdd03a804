"""Publication: layer records (name, kind, versions, ROI, files) and a static STAC catalog."""
