"""3D pressure loss of idealised stenoses (50-90 % area) against Young & Tsai (1973): the table.

A straight tube, D0 = --diameter-mm, with a 2 D0 cosine narrowing, blood (1060 kg/m^3, 3.5 mPa s),
a parabolic inlet at Reynolds number --reynolds and a pressure outlet --downstream D0 beyond the
lesion. The stenosis loss is the jump between the upstream and far-downstream pressure lines at
the throat (the tube's own friction removed); Young-Tsai is evaluated at the measured flow and at
the throat area the lattice resolves. Method and helpers: tests/core/test_flow_stenosis_3d.py.
At 16 cells and Re 50, 90 % diverges without turbulence modelling: --smagorinsky 0.1 switches the LES
term on from --les-from %, or run it at a lower --reynolds.
``--fine`` doubles the cells across D0 (a resolution check; about 16 x the work).
"""

from __future__ import annotations

import sys

from _common import REPO, benchmark_parser, machine, report

sys.path.insert(0, str(REPO))

from surgtwin.core.flow.errors import FlowError  # noqa: E402
from tests.core.test_flow_stenosis_3d import StenosisCase, StenosisOutcome, run_stenosis  # noqa: E402


def table(outcomes: list[StenosisOutcome]) -> str:
    head = (
        "| area % (lattice) | Re | LES | 3D loss Pa | Young–Tsai Pa | 3D / YT | Stokes Pa "
        "| 3D − Stokes Pa | YT K_t part Pa | recovery | cells | steps | s |\n" + "|---" * 13 + "|"
    )
    rows = [
        f"| {o.case.area_reduction:.0%} ({o.lattice_area_reduction:.1%}) | {o.reynolds:.0f} "
        f"| {o.case.smagorinsky:g} "
        f"| {o.loss_3d_pa:.2f} | {o.young_tsai_pa:.2f} | {o.ratio:.2f} | {o.lubrication_pa:.2f} "
        f"| {o.loss_3d_pa - o.lubrication_pa:.2f} | {o.young_tsai_inertial_pa:.2f} "
        f"| {o.downstream_slope_ratio / o.upstream_slope_ratio:.2f}{'' if o.converged else ' (not steady)'} "
        f"| {o.fluid_cells} | {o.steps} | {o.seconds:.0f} |"
        for o in outcomes
    ]
    return "\n".join([head, *rows])


def main() -> None:
    p = benchmark_parser(__doc__)
    p.add_argument("--areas", default="50,60,70,80,90", help="area reductions in %%, comma-separated")
    p.add_argument("--reynolds", type=float, default=50.0)
    p.add_argument("--cells", type=int, default=16, help="cells across D0")
    p.add_argument("--diameter-mm", type=float, default=4.0)
    p.add_argument("--downstream", type=float, default=10.0, help="tube beyond the lesion, in D0")
    p.add_argument("--smagorinsky", type=float, default=0.0, help="LES constant where --les-from applies")
    p.add_argument(
        "--les-from",
        type=float,
        default=90.0,
        help="area %% from which the LES term is on (16 cells: 90 %% is unstable without it at Re 50)",
    )
    p.add_argument("--max-steps", type=int, default=200_000, help="stop a run here (marked not steady)")
    p.add_argument("--fine", action="store_true", help="twice the cells across")
    args = p.parse_args()
    cells = args.cells * (2 if args.fine else 1)
    outcomes = []
    for area in (float(a) / 100 for a in args.areas.split(",")):
        case = StenosisCase(
            area, args.reynolds, cells, args.diameter_mm * 1e-3,
            downstream_diameters=args.downstream,
            smagorinsky=args.smagorinsky if area * 100 >= args.les_from - 1e-9 else 0.0,
            max_steps=args.max_steps,
        )  # fmt: skip
        try:
            outcomes.append(run_stenosis(case))
        except FlowError as exc:  # a diverged lattice is a row of the result, not the end of the table
            print(f"{area:.0%}: {exc}", flush=True)
            continue
        o = outcomes[-1]
        print(
            f"{area:.0%}: 3D {o.loss_3d_pa:.3f} Pa, Young-Tsai {o.young_tsai_pa:.3f} Pa, {o.seconds:.0f} s",
            flush=True,
        )
    if not outcomes:
        return
    c = outcomes[0].case
    lines = [
        f"## Stenosis loss, 3D vs Young–Tsai ({machine()})",
        "",
        f"D0 = {c.diameter_m * 1e3:g} mm, {cells} cells across (dx = {c.dx_m * 1e6:.0f} µm), "
        "2 D0 cosine lesion, "
        f"{c.upstream_diameters:g} D0 upstream, {c.downstream_diameters:g} D0 downstream, "
        f"Re = {args.reynolds:g} nominal; LES = Smagorinsky constant; recovery = downstream / upstream "
        "pressure gradient (1 when the pressure line has recovered).",
        "",
        table(outcomes),
    ]
    report(lines, args.record)


if __name__ == "__main__":
    main()
