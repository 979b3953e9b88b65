"""Training configuration: a YAML file plus `--set key=value` overrides, checked up front."""

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from .errors import SemsafeError


@dataclass
class DataConfig:
    prepared: str | None = None  # folder written by `semsafe prepare`; "auto" = prepare it now
    harmful: str | None = None  # or: a .jsonl/.csv of harmful prompts with the model's answers
    retain: str | None = None  # and: a .jsonl/.csv of benign prompts with answers
    n_harmful: int | None = 30  # harmful-set size (the paper's point: a handful is enough)
    n_retain: int | None = None
    harmful_per_retain: int = 1  # harmful examples in a step per retain example
    max_length: int = 128
    prepare_max_new_tokens: int = 64  # used when prepared == "auto"


@dataclass
class TrainSettings:
    steps: int = 50
    lr: float = 2e-4
    batch_size: int = 4  # retain examples per device per step
    grad_accum: int = 1
    seed: int = 0
    logging_steps: int = 1
    save_steps: int = 25
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    precision: str = "auto"  # auto: bf16 on GPUs that support it, fp32 otherwise; or fp32/bf16


@dataclass
class LoraSettings:
    enabled: bool = True
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: str | list = "auto"  # auto: peft's choice for the architecture; or a list


@dataclass
class ObjectiveSettings:
    token_weighting: str = "all"
    npo_beta: float = 0.1
    cost_embeddings: str = "input"  # input embeddings or LM-head rows ("output")


@dataclass
class TrainConfig:
    model: str = "smollm2-135m-instruct"
    objective: str = "emd"
    lam: float = 1.0  # written `lambda` in YAML
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainSettings = field(default_factory=TrainSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    options: ObjectiveSettings = field(default_factory=ObjectiveSettings)
    sweep: str | None = None  # the sweep this run belongs to, if any

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lambda"] = d.pop("lam")
        return d

    def validate(self) -> "TrainConfig":
        from .objectives import OBJECTIVES

        if self.objective not in OBJECTIVES:
            raise SemsafeError(f"unknown objective {self.objective!r}; choose one of: {', '.join(OBJECTIVES)}")
        if self.lam < 0:
            raise SemsafeError(f"lambda must be >= 0 (the sign is part of each objective), got {self.lam}")
        t = self.train
        for name, value, low in (("train.steps", t.steps, 1), ("train.batch_size", t.batch_size, 1),
                                 ("train.grad_accum", t.grad_accum, 1), ("train.logging_steps", t.logging_steps, 1),
                                 ("train.save_steps", t.save_steps, 1),
                                 ("data.harmful_per_retain", self.data.harmful_per_retain, 1),
                                 ("data.max_length", self.data.max_length, 8)):
            if value < low:
                raise SemsafeError(f"{name} must be at least {low}, got {value}")
        if t.lr <= 0:
            raise SemsafeError(f"train.lr must be positive, got {t.lr}")
        if t.precision not in ("auto", "fp32", "bf16"):
            raise SemsafeError(f"train.precision must be auto, fp32 or bf16, not {t.precision!r}")
        if self.options.cost_embeddings not in ("input", "output"):
            raise SemsafeError("options.cost_embeddings must be 'input' or 'output'")
        if not (self.options.token_weighting == "all" or self.options.token_weighting.startswith("first:")):
            raise SemsafeError(f"options.token_weighting must be 'all' or 'first:N', not {self.options.token_weighting!r}")
        return self


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise SemsafeError(f"{where or 'config'} must be a mapping, got {type(values).__name__}")
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        name = "lam" if key == "lambda" else key
        if name not in known:
            raise SemsafeError(f"unknown config key {where + key!r}; known: {', '.join(sorted(known))}")
        sub = {"data": DataConfig, "train": TrainSettings, "lora": LoraSettings, "options": ObjectiveSettings}
        kwargs[name] = _build(sub[name], value or {}, f"{name}.") if cls is TrainConfig and name in sub else value
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise SemsafeError(f"bad config: {err}") from None


def config_from_dict(values: dict) -> TrainConfig:
    cfg = _build(TrainConfig, values or {}, "")
    for f in fields(cfg.train):  # YAML reads 2e-4 as a string; coerce numbers where expected
        value = getattr(cfg.train, f.name)
        if f.type in ("float", float) and isinstance(value, str):
            try:
                setattr(cfg.train, f.name, float(value))
            except ValueError:
                raise SemsafeError(f"train.{f.name} must be a number, got {value!r}") from None
    cfg.lam = float(cfg.lam)
    return cfg.validate()


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """Apply ``key.sub=value`` strings (values parsed as YAML) to a config mapping."""
    values = yaml.safe_load(yaml.safe_dump(values)) or {}
    for item in overrides or []:
        if "=" not in item:
            raise SemsafeError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = values
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise SemsafeError(f"--set {key}: {p} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return values


def load_config(path: str | None, overrides: list[str] | None = None) -> TrainConfig:
    values = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise SemsafeError(f"config file {p} does not exist (examples are in configs/)")
        try:
            values = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            raise SemsafeError(f"{p} is not valid YAML: {err}") from None
    return config_from_dict(apply_overrides(values, overrides or []))
