"""`tui-interp generate`: continue a prompt (greedy by default), under ablations and steering. Thin: parse, call the engine, print."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from tui_interp.cli import app
from tui_interp.cli.common import (
    AblateOpt,
    DeviceOpt,
    DtypeChoice,
    DtypeOpt,
    JsonOpt,
    PromptOpt,
    SeedOpt,
    SteerOpt,
    TokensOpt,
    console,
    emit_json,
    user_errors,
)
from tui_interp.cli.model_cmds import BosOpt, ModelArg, load


@app.command()
def generate(
    model: ModelArg,
    prompt: PromptOpt = None,
    tokens: TokensOpt = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Most tokens to add (fewer at EOS or the context's end).")] = 20,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, help="0: greedy (as transformers' greedy generate); above: sample.")] = 0.0,
    seed: SeedOpt = 0,
    ablate: AblateOpt = None,
    steer: SteerOpt = None,
    bos: BosOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
    json: JsonOpt = False,
) -> None:
    """Continue a prompt with the model (a KV cache; interventions apply to every generated position)."""
    with user_errors():
        from tui_interp.engine.generate import generate as run_generate
        from tui_interp.engine.interventions import parse_steering
        from tui_interp.engine.tokens import encode_prompt

        lm = load(model, device, dtype)
        ids, bos_how = encode_prompt(lm, prompt, tokens, bos)
        steering = [parse_steering(spec, lm.model) for spec in steer or []]
        result = run_generate(lm, ids, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                              ablate=ablate or [], steer=steering)
    if json:
        emit_json(result.to_json())
        return
    how = "greedy" if temperature == 0 else f"temperature {temperature:g}, seed {seed}"
    console.print(f"[bold]{escape(lm.name)}[/] on {lm.device}, {how}, BOS: {bos_how}; stopped at {result.stopped}")
    if result.interventions:
        ref = f" (reference: {escape(result.reference)})" if result.reference else ""
        console.print("interventions: " + escape(", ".join(result.interventions)) + ref)
    from tui_interp.model.tokenizer import display_text

    if lm.tokenizer is not None:
        console.print(f"[dim]{escape(display_text(lm.tokenizer.decode(list(result.prompt_ids))))}[/]{escape(display_text(result.text or ''))}")
    console.print("new tokens: " + " ".join(str(i) for i in result.new_ids))
