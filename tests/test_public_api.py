"""The public surface is deliberate: changing it must change this test."""

import terrapipe
from terrapipe import errors


def test_top_level_names() -> None:
    assert sorted(terrapipe.__all__) == [
        "Param",
        "Run",
        "Task",
        "Workflow",
        "get_run",
        "list_runs",
        "submit",
        "task",
    ]
    for name in terrapipe.__all__:
        assert getattr(terrapipe, name) is not None


def test_every_error_is_a_terrapipe_error_and_a_builtin() -> None:
    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, Exception) and c.__module__ == errors.__name__
    ]
    assert len(classes) > 15
    for cls in classes:
        assert issubclass(cls, errors.TerrapipeError)
        if cls not in (errors.TerrapipeError, errors.Cancelled):
            builtin = [
                b
                for b in cls.__mro__
                if b.__module__ == "builtins" and b not in (Exception, BaseException, object)
            ]
            assert builtin, f"{cls.__name__} should also inherit a builtin (ValueError, ...)"
