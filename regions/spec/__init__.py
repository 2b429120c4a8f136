"""Declarative rails: a YAML spec (`model`), the reader that runs it (`engine`), the synthetic writer that renders
truth in its format (`writer`) and a draft of a spec from a sample file (`draft`).

Only the model is imported here: region configs embed specs, and the engine imports `regions.rails`, which imports
`regions` itself.
"""

from regions.spec.model import RailSpec, SpecError, json_schema, load_spec, parse_spec

__all__ = ["RailSpec", "SpecError", "json_schema", "load_spec", "parse_spec"]
