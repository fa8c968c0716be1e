"""Single-signal fitting: one SIREN per signal, for every application of the SIREN paper.

`fit_signal(config, run_dir, device=...)` fits and writes a run folder; `preset_config(task, "paper" |
"default")` gives each task's recipe; `load_task` reads the input (through `hypersiren.io`); the tasks
are in `tasks` (grid signals and Poisson) and `fields` (SDF, Helmholtz, wave). Meshing and surface
distances live in `hypersiren.geometry` and are re-exported here (`Mesh`, `extract_mesh`,
`surface_distance`).
"""

from ..geometry import Mesh, SurfaceDistance, extract_mesh, sample_surface, surface_distance
from .config import DERIVATIVES, FIT_PRESETS, TASKS, FitConfig, preset_config
from .loop import fit_signal, learning_rate, load_siren, load_task, save_siren

__all__ = ["DERIVATIVES", "FIT_PRESETS", "TASKS", "FitConfig", "Mesh", "SurfaceDistance", "extract_mesh", "fit_signal",
           "learning_rate", "load_siren", "load_task", "preset_config", "sample_surface", "save_siren",
           "surface_distance"]
