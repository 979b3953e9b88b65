"""Training configuration: a YAML file plus `--set key=value` overrides, checked up front."""

import math
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from .errors import SemsafeError


# the objectives registry's names (semsafe/objectives.py; a test keeps the two equal), here so
# that checking a config never imports torch and a bad value is reported in well under a second
OBJECTIVE_NAMES = ("sft", "emd", "emd_lb", "ga", "unlikelihood", "npo", "refusal_sft")


@dataclass
class DataConfig:
    prepared: str | None = None  # folder written by `semsafe prepare`; "auto" = prepare it now
    harmful: str | None = None  # or: a .jsonl/.json/.csv/.parquet of harmful prompts with the model's answers
    retain: str | None = None  # and: a .jsonl/.json/.csv/.parquet of benign prompts with answers
    n_harmful: int | None = 30  # harmful-set size (the paper's point: a handful is enough)
    n_retain: int | None = None
    harmful_per_retain: int = 1  # harmful examples in a step per retain example
    max_length: int = 128
    prepare_max_new_tokens: int = 64  # used when prepared == "auto"
    # seed of the train / held-out split of prompts (`semsafe prepare`'s split); independent of
    # train.seed so every training seed is evaluated on the same held-out prompts
    split_seed: int = 0


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
    grad_norm_every: int = 10  # log each term's gradient norm every N steps (one backward per term; the update reuses them)
    # the EMD to the harmful answers, for objectives that do not compute it as they train (sft,
    # refusal_sft: it costs them a forward of the harmful batch), every N steps and at the last
    harmful_emd_every: int = 1
    report_to: str | list = "none"  # passed to the Trainer: none, tensorboard, wandb, mlflow, ...


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
    lb_target: str = "token"  # emd_lb: the harmful token (one-hot) or "reference" (frozen base model)
    fused: bool = True  # fused chunked EMD / bound terms; false: the plain reference implementation


@dataclass
class TrainConfig:
    model: str = "smollm2-135m-instruct"
    objective: str = "emd"
    lam: float = 1.0  # written `lambda` in YAML
    # ratio (the default, as in the shipped configs): λ is the target ratio ||λ∇H|| / ||∇CE(retain)||,
    # measured on the first `calibration_steps` batches and then held fixed, so objectives compare
    # at equal strength. fixed: λ multiplies the harmful term as given.
    lambda_mode: str = "ratio"
    calibration_steps: int = 4
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
        if self.objective not in OBJECTIVE_NAMES:
            raise SemsafeError(f"unknown objective {self.objective!r}; choose one of: {', '.join(OBJECTIVE_NAMES)}")
        if not math.isfinite(self.lam) or self.lam < 0:
            raise SemsafeError(f"lambda must be a finite number >= 0 (the sign is part of each objective), got {self.lam}")
        if self.lambda_mode not in ("fixed", "ratio"):
            raise SemsafeError(f"lambda_mode must be 'fixed' or 'ratio', not {self.lambda_mode!r}")
        if self.calibration_steps < 1:
            raise SemsafeError(f"calibration_steps must be at least 1, got {self.calibration_steps}")
        t = self.train
        for name, value, low in (("train.steps", t.steps, 1), ("train.batch_size", t.batch_size, 1),
                                 ("train.grad_accum", t.grad_accum, 1), ("train.logging_steps", t.logging_steps, 1),
                                 ("train.save_steps", t.save_steps, 1),
                                 ("data.harmful_per_retain", self.data.harmful_per_retain, 1),
                                 ("data.max_length", self.data.max_length, 8),
                                 ("data.prepare_max_new_tokens", self.data.prepare_max_new_tokens, 1),
                                 ("train.grad_norm_every", t.grad_norm_every, 1),
                                 ("train.harmful_emd_every", t.harmful_emd_every, 1),
                                 ("lora.r", self.lora.r, 1)):
            if value < low:
                raise SemsafeError(f"{name} must be at least {low}, got {value}")
        for name, value in (("train.lr", t.lr), ("train.max_grad_norm", t.max_grad_norm),
                            ("options.npo_beta", self.options.npo_beta)):
            if not math.isfinite(value) or value <= 0:
                raise SemsafeError(f"{name} must be a finite number > 0, got {value}")
        if not 0 <= self.lora.dropout < 1:
            raise SemsafeError(f"lora.dropout must be in [0, 1), got {self.lora.dropout}")
        for name, value in (("data.n_harmful", self.data.n_harmful), ("data.n_retain", self.data.n_retain)):
            if value is not None and value < 1:
                raise SemsafeError(f"{name} must be at least 1 (or null for all), got {value}")
        if t.precision not in ("auto", "fp32", "bf16"):
            raise SemsafeError(f"train.precision must be auto, fp32 or bf16, not {t.precision!r}")
        if self.options.cost_embeddings not in ("input", "output"):
            raise SemsafeError("options.cost_embeddings must be 'input' or 'output'")
        tw = self.options.token_weighting
        if not (tw == "all" or (tw.startswith("first:") and tw[6:].isdigit() and int(tw[6:]) > 0)):
            raise SemsafeError(f"options.token_weighting must be 'all' or 'first:N' (N >= 1), not {tw!r}")
        if self.options.lb_target not in ("token", "reference"):
            raise SemsafeError(f"options.lb_target must be 'token' or 'reference', not {self.options.lb_target!r}")
        return self


def _check_type(name: str, annotation, value):
    """``value`` converted to the field's declared type, or a SemsafeError saying what is wrong.

    YAML gives ints, floats, strings, bools, lists and null; a field declared ``int`` takes only
    a whole number (not ``1.5``, ``true`` or ``"abc"``), a ``float`` any finite number (YAML
    reads ``2e-4`` as a string, so numeric strings are accepted there)."""
    args = typing.get_args(annotation) or (annotation,)
    kinds = {"None" if a is type(None) else getattr(a, "__name__", str(a)) for a in args}
    if value is None:
        if "None" in kinds:
            return None
        raise SemsafeError(f"{name} must be set (got null)")
    if "bool" in kinds:
        if isinstance(value, bool):
            return value
        raise SemsafeError(f"{name} must be true or false, got {value!r}")
    if "int" in kinds:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise SemsafeError(f"{name} must be a whole number, got {value!r}")
    if "float" in kinds:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise SemsafeError(f"{name} must be a number, got {value!r}") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise SemsafeError(f"{name} must be a finite number, got {value!r}")
            return float(value)
        raise SemsafeError(f"{name} must be a number, got {value!r}")
    if "str" in kinds:
        if isinstance(value, str) or ("list" in kinds and isinstance(value, list)):
            return value
        raise SemsafeError(f"{name} must be text, got {value!r}")
    return value


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
        if cls is TrainConfig and name in sub:
            kwargs[name] = _build(sub[name], value or {}, f"{name}.")
        else:
            kwargs[name] = _check_type(where + key, known[name].type, value)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise SemsafeError(f"bad config: {err}") from None


def config_from_dict(values: dict) -> TrainConfig:
    return _build(TrainConfig, values or {}, "").validate()


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


def add_train_arguments(p) -> None:
    """`semsafe train` / `python -m semsafe.train` arguments (here, not in train.py, so building
    the command line never imports torch)."""
    p.add_argument("--config", help="YAML config (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=20 --set lambda=0.5")
    p.add_argument("--run-id", help="name of the run folder (default: time-objective-random)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
