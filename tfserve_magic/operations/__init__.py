"""Operations on served models: export, push a new version, move labels."""

__all__: list[str] = []
