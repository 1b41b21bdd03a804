"""Converters chosen by selectors: the first registered converter whose selector matches wins.

```python
class MyManager(ConversionManager):
    '''Converters for my products.'''

@MyManager.register()
class MyConverter(Converter):
    PARAMETER_SELECTORS = (
        ParameterSelector(matches=lambda d: d.entry_id.startswith("S1"), band="VV"),
    )
    def __init__(self, band): ...
    def run(self, in_file, out_dir, **kwargs) -> list[Path]: ...

MyManager().convert(dataset, "file.tif", "out/")
```

Predicates receive a :class:`Subject`: the dataset's attributes, plus ``path`` (the file to
convert). Built-ins (:class:`DefaultConversionManager`): any GDAL raster to a Cloud
Optimized GeoTIFF, any OGR vector to GeoParquet. Outputs are written to a temporary name
and renamed when complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from terrapipe.errors import InvalidInput, NoConverter
from terrapipe.store.atomic import atomic_path


@dataclass(frozen=True)
class Subject:
    """What a selector sees: the dataset (attributes delegated) and the file's path."""

    dataset: Any
    path: Path

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dataset, name)


@dataclass(frozen=True)
class ParameterSelector:
    """A predicate on the subject, and the keyword arguments to build the converter with."""

    matches: Callable[[Subject], bool]
    parameters: dict[str, Any] = field(default_factory=dict)

    def __init__(self, matches: Callable[[Subject], bool], **parameters: Any) -> None:
        if not callable(matches):
            raise InvalidInput(f"matches must be callable, not {type(matches).__name__}")
        object.__setattr__(self, "matches", matches)
        object.__setattr__(self, "parameters", parameters)


class Converter:
    """Base of converters: ``PARAMETER_SELECTORS`` and ``run(in_file, out_dir) -> [paths]``."""

    PARAMETER_SELECTORS: ClassVar[tuple[ParameterSelector, ...]] = ()

    def run(self, in_file: Path, out_dir: Path, **kwargs: Any) -> list[Path]:
        raise NotImplementedError


class ConversionManager:
    """Chooses and runs a converter; each subclass has its own ordered registry."""

    converters: ClassVar[list[type[Converter]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.converters = []

    @classmethod
    def register(cls) -> Callable[[type[Converter]], type[Converter]]:
        """Class decorator adding a converter to this manager (in registration order)."""

        def decorator(converter: type[Converter]) -> type[Converter]:
            if not (isinstance(converter, type) and issubclass(converter, Converter)):
                raise InvalidInput(f"{converter!r} is not a Converter subclass")
            cls.converters.append(converter)
            return converter

        return decorator

    def __init__(self, working_directory: str | Path = ".") -> None:
        self.working_directory = Path(working_directory)

    def select(self, dataset: Any, in_file: str | Path) -> Converter:
        """An instance of the first converter whose selector matches; NoConverter otherwise."""
        subject = Subject(dataset, Path(in_file))
        for converter in self.converters:
            for selector in converter.PARAMETER_SELECTORS:
                if selector.matches(subject):
                    return converter(**selector.parameters)
        names = ", ".join(c.__name__ for c in self.converters) or "none registered"
        raise NoConverter(
            f"no converter of {type(self).__name__} accepts {str(in_file)!r} ({names})"
        )

    def convert(
        self, dataset: Any, in_file: str | Path, out_dir: str | Path | None = None, **kwargs: Any
    ) -> list[Path]:
        """Convert ``in_file`` with the converter selected for ``dataset``; returns outputs."""
        in_file = Path(in_file)
        if not in_file.exists():
            raise InvalidInput(f"file to convert not found: {str(in_file)!r}")
        out = Path(out_dir) if out_dir is not None else self.working_directory
        out.mkdir(parents=True, exist_ok=True)
        return self.select(dataset, in_file).run(in_file, out, **kwargs)


def is_gdal_raster(path: Path) -> bool:
    """True when GDAL opens ``path`` as a raster with at least one band (or subdatasets)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as src:
            return src.count > 0 or bool(src.subdatasets)
    except (RasterioIOError, ValueError):
        return False


def is_ogr_vector(path: Path) -> bool:
    """True when OGR opens ``path`` as a vector layer."""
    import pyogrio

    try:
        return bool(pyogrio.list_layers(path).size)
    except Exception:
        return False


class DefaultConversionManager(ConversionManager):
    """Built-in conversions: rasters to COG, vectors to GeoParquet."""


@DefaultConversionManager.register()
class RasterToCOG(Converter):
    """Any GDAL raster (GeoTIFF, JPEG2000, a NetCDF variable) to a Cloud Optimized GeoTIFF."""

    PARAMETER_SELECTORS = (ParameterSelector(matches=lambda s: is_gdal_raster(s.path)),)

    def __init__(self, variable: str | None = None, compress: str = "DEFLATE") -> None:
        self.variable, self.compress = variable, compress

    def source_name(self, in_file: Path, variable: str | None) -> str:
        """The GDAL name to open: ``NETCDF:"file":var`` for a NetCDF variable."""
        variable = variable or self.variable
        if variable:
            return f'NETCDF:"{in_file}":{variable}'
        return str(in_file)

    def run(
        self, in_file: Path, out_dir: Path, *, variable: str | None = None, **kwargs: Any
    ) -> list[Path]:
        import rasterio
        from rasterio.shutil import copy as gdal_copy

        variable = variable or self.variable
        source = self.source_name(in_file, variable)
        with rasterio.open(source) as src:
            if src.count == 0 and src.subdatasets and not variable:
                names = [s.rsplit(":", 1)[-1] for s in src.subdatasets]
                raise InvalidInput(
                    f"{in_file.name!r} has several variables {names}: choose one with variable="
                )
        stem = in_file.stem + (f"_{variable}" if variable else "")
        target = out_dir / f"{stem}.tif"
        with atomic_path(target) as tmp:
            gdal_copy(
                source,
                tmp,
                driver="COG",
                COMPRESS=self.compress,
                BIGTIFF="IF_SAFER",
                OVERVIEWS="AUTO",
            )
        return [target]


@DefaultConversionManager.register()
class VectorToGeoParquet(Converter):
    """Any OGR vector (GeoJSON, GeoPackage, Shapefile...) to GeoParquet, one file per layer."""

    PARAMETER_SELECTORS = (ParameterSelector(matches=lambda s: is_ogr_vector(s.path)),)

    def run(self, in_file: Path, out_dir: Path, **kwargs: Any) -> list[Path]:
        import geopandas as gpd
        import pyogrio

        layers = [str(name) for name, _ in pyogrio.list_layers(in_file)]
        outputs = []
        for layer in layers:
            frame = gpd.read_file(in_file, layer=layer, engine="pyogrio")
            name = in_file.stem if len(layers) == 1 else f"{in_file.stem}_{layer}"
            target = out_dir / f"{name}.parquet"
            with atomic_path(target) as tmp:
                frame.to_parquet(tmp)
            outputs.append(target)
        return outputs
