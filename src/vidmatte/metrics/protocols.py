"""Names of the VM benchmark metrics and the evaluation protocols (no heavy imports: the CLI reads them)."""

PROTOCOLS = ("lr", "hr")
ALL_METRICS = ("pha_mad", "pha_mse", "pha_grad", "pha_conn", "pha_dtssd", "fgr_mad", "fgr_mse")
# The 1920x1080 protocol leaves out Conn and foreground MAD (too slow / not reported at that size).
PROTOCOL_METRICS = {
    "lr": ALL_METRICS,
    "hr": ("pha_mad", "pha_mse", "pha_grad", "pha_dtssd", "fgr_mse"),
}
FGR_METRICS = ("fgr_mad", "fgr_mse")
