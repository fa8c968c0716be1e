"""`hypersiren.geometry.render`: disks of the right size without holes, Lambertian shading against the
analytic sphere, the z-buffer, the camera's conventions (azimuth, elevation, up axis) through projected
points, dots over a mesh picture, and the input checks."""

import numpy as np
import pytest
import torch

from hypersiren.geometry import render
from hypersiren.geometry import Mesh, extract_mesh, render_mesh, render_points, sample_surface

SIZE = 128
GREY = (0.75, 0.78, 0.85)  # render_mesh's default colour
LIGHT = np.array([-1.0, 1.0, 1.0]) / np.sqrt(3.0)  # the documented light, view coordinates


def sphere(radius: float, centre=(0.0, 0.0, 0.0), resolution: int = 64) -> Mesh:
    centre = torch.tensor(centre)
    return extract_mesh(lambda p: (p - centre).norm(dim=-1) - radius, resolution=resolution)


def box(half: tuple[float, float, float]) -> Mesh:
    half = torch.tensor(half)
    return extract_mesh(lambda p: (p.abs() - half).amax(dim=-1), resolution=64)


def merge(*meshes: Mesh) -> Mesh:
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return Mesh(np.concatenate([m.vertices for m in meshes]),
                np.concatenate([m.faces + offset for m, offset in zip(meshes, offsets)]))


def panels(image: np.ndarray) -> list[np.ndarray]:
    return np.split(image, image.shape[1] // image.shape[0], axis=1)


def covered(panel: np.ndarray, background: float = 1.0) -> np.ndarray:
    """[H, W] True where the panel is not the background."""
    return np.any(panel != background, axis=-1)


def pixel_centres(size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """View x and y (world units, bound 1) of every pixel centre, [size, size] each."""
    coordinate = (np.arange(size) + 0.5) / size * 2 - 1
    x, y = np.meshgrid(coordinate, -coordinate)
    return x, y


@pytest.fixture(scope="module")
def ball() -> Mesh:
    return sphere(0.6)


# --- meshes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bound", [1.0, 1.5])
def test_a_sphere_renders_a_hole_free_centred_disk_of_its_area(ball, bound):
    image = render_mesh(ball, size=SIZE, azimuths=(0.0, 90.0, 180.0, 270.0), bound=bound)
    assert image.shape == (SIZE, 4 * SIZE, 3) and image.dtype == np.float32
    assert image.min() >= 0 and image.max() <= 1
    x, y = pixel_centres()
    distance = np.hypot(x, y) * bound  # world units from the panel centre
    for panel in panels(image):
        mask = covered(panel)
        assert mask.mean() == pytest.approx(np.pi * 0.6 ** 2 / (2 * bound) ** 2, rel=0.03)
        assert mask[distance < 0.9 * 0.6].all()  # no pinholes
        assert not mask[distance > 0.6 + 2 * bound / SIZE].any()  # centred, nothing stray


def test_sphere_shading_is_lambertian_with_the_light_at_the_viewers_upper_left(ball):
    panel = render_mesh(ball, size=SIZE, azimuths=(30.0,), elevation=-10.0)
    x, y = pixel_centres()
    inside = x ** 2 + y ** 2 < (0.95 * 0.6) ** 2
    normal = np.stack([x, y, np.sqrt(np.clip(0.36 - x ** 2 - y ** 2, 0, None))], axis=-1) / 0.6  # view
    expected = 0.25 + 0.75 * np.clip(normal @ LIGHT, 0, None)  # any view of a sphere looks the same
    shade = panel[..., 0] / GREY[0]
    assert np.abs(shade - expected)[inside].mean() < 0.01
    assert shade[inside].max() == pytest.approx(1.0, abs=0.01)
    assert shade[inside].min() == pytest.approx(0.25, abs=0.01)  # ambient only, facing away from the light
    np.testing.assert_allclose(panel[inside] / GREY, shade[inside][:, None].repeat(3, 1), rtol=1e-5)
    row, col = np.unravel_index(np.argmax(np.where(inside, shade, 0)), shade.shape)
    towards_light = 0.6 / np.sqrt(3) * SIZE / 2  # pixels left of and above the centre
    assert abs(SIZE / 2 - 0.5 - col - towards_light) < 6 and abs(SIZE / 2 - 0.5 - row - towards_light) < 6


def test_surfaces_are_lit_on_both_sides(ball):
    inside_out = Mesh(ball.vertices, ball.faces[:, ::-1])
    np.testing.assert_array_equal(render_mesh(inside_out, size=64), render_mesh(ball, size=64))


def test_the_nearer_surface_hides_the_farther_one():
    big, small = sphere(0.5), sphere(0.2, centre=(0.0, 0.0, 0.7))  # small in front at azimuth 0
    views = dict(size=SIZE, azimuths=(0.0, 180.0), elevation=0.0)
    both, alone_big, alone_small = (panels(render_mesh(m, **views)) for m in (merge(big, small), big, small))
    front = covered(alone_small[0])
    assert front.sum() > 0.9 * np.pi * (0.2 * SIZE / 2) ** 2
    np.testing.assert_allclose(both[0][front], alone_small[0][front], atol=1e-6)
    np.testing.assert_allclose(both[0][~front], alone_big[0][~front], atol=1e-6)
    np.testing.assert_allclose(both[1], alone_big[1], atol=1e-6)  # seen from behind, big hides small
    # the same with the faces in the other order: the depth test, not the drawing order, decides
    np.testing.assert_allclose(render_mesh(merge(small, big), **views), render_mesh(merge(big, small), **views),
                               atol=1e-6)


def test_rasterising_in_small_chunks_changes_nothing(ball, monkeypatch):
    scene = merge(ball, box((0.9, 0.1, 0.1)))  # small faces and long thin ones, some over CHUNK candidates
    whole = render_mesh(scene, size=64)
    monkeypatch.setattr(render, "CHUNK", 50)
    np.testing.assert_array_equal(render_mesh(scene, size=64), whole)


def extents(panel: np.ndarray) -> tuple[int, int]:
    """Width and height in pixels of the non-background part of a panel."""
    mask = covered(panel)
    return int(mask.any(axis=0).sum()), int(mask.any(axis=1).sum())


def test_azimuth_turns_the_view_about_the_up_axis():
    image = render_mesh(box((0.8, 0.2, 0.3)), size=SIZE, azimuths=(0.0, 90.0, 180.0, 270.0), elevation=0.0)
    sizes = [extents(panel) for panel in panels(image)]
    scale = SIZE / 2
    for (width, height), seen_width in zip(sizes, (0.8, 0.3, 0.8, 0.3)):
        assert abs(width - 2 * seen_width * scale) <= 2 and abs(height - 2 * 0.2 * scale) <= 2


@pytest.mark.parametrize("up, long_axis, right_axis, towards", [
    ("y", 1, 0, (0, 0, 1)), ("z", 2, 0, (0, -1, 0)), ("x", 0, 1, (0, 0, -1))])
def test_the_up_axis_is_vertical_and_the_documented_axes_point_right_and_to_the_viewer(up, long_axis, right_axis,
                                                                                       towards):
    half = np.full(3, 0.15)
    half[long_axis] = 0.8
    for azimuth in (0.0, 45.0, 90.0):
        width, height = extents(render_mesh(box(tuple(half)), size=SIZE, azimuths=(azimuth,), elevation=0.0, up=up))
        assert abs(height - 2 * 0.8 * SIZE / 2) <= 2 and width < 0.5 * SIZE
    point = np.zeros((1, 3))
    point[0, right_axis] = 0.5
    mask = covered(render_points(point, size=SIZE, azimuths=(0.0,), elevation=0.0, up=up))
    assert mask[:, SIZE * 3 // 4].any() and not mask[:, : SIZE // 2].any()
    near = covered(render_points(0.5 * np.array([towards]), size=SIZE, azimuths=(0.0,), elevation=20.0, up=up))
    assert near[SIZE // 2 + 10].any() and not near[: SIZE // 2].any()  # seen from above: below the centre


def test_an_empty_mesh_renders_the_background():
    image = render_mesh(Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)), size=16,
                        azimuths=(0.0, 90.0), background=0.5)
    np.testing.assert_array_equal(image, np.full((16, 32, 3), 0.5, np.float32))
    no_faces = render_mesh(Mesh(np.ones((4, 3), np.float32), np.zeros((0, 3), np.int64)), size=16,
                           background=(0.1, 0.2, 0.3))
    np.testing.assert_allclose(no_faces, np.broadcast_to(np.float32([0.1, 0.2, 0.3]), (16, 48, 3)))


# --- points -----------------------------------------------------------------------------------------


def test_a_dot_at_the_origin_is_a_disk_of_radius_one_around_the_centre_pixel():
    image = render_points(np.zeros((1, 3)), size=SIZE, azimuths=(0.0, 123.0), elevation=20.0)
    centre = SIZE // 2  # the origin falls on the corner between pixels 63 and 64; it lies in pixel 64
    expected = np.zeros((SIZE, SIZE), bool)
    expected[centre, centre - 1:centre + 2] = expected[centre - 1:centre + 2, centre] = True
    for panel in panels(image):
        np.testing.assert_array_equal(covered(panel), expected)


COS20, SIN20 = np.cos(np.radians(20.0)), np.sin(np.radians(20.0))


@pytest.mark.parametrize("point, elevation, expected", [
    # (column, row) in continuous pixel coordinates at azimuths 0, 90, 180
    ((0.5, 0.0, 0.0), 0.0, [(96, 64), (64, 64), (32, 64)]),
    ((0.0, 0.0, 0.5), 0.0, [(64, 64), (32, 64), (64, 64)]),  # azimuth 90 looks from +x: +z is on the left
    ((0.0, 0.5, 0.0), 20.0, [(64, 64 - 32 * COS20)] * 3),
    ((0.0, 0.0, 0.5), 20.0, [(64, 64 + 32 * SIN20), (32, 64), (64, 64 - 32 * SIN20)]),  # seen from above
])
def test_points_land_where_the_camera_projects_them(point, elevation, expected):
    image = render_points(np.array([point]), size=SIZE, azimuths=(0.0, 90.0, 180.0), elevation=elevation,
                          radius=0)
    for panel, (column, row) in zip(panels(image), expected):
        rows, columns = np.nonzero(covered(panel))
        assert len(rows) == 1  # the pixel holding the point (either one, for a point on their border):
        assert columns[0] - 1e-9 <= column <= columns[0] + 1 + 1e-9 and rows[0] - 1e-9 <= row <= rows[0] + 1 + 1e-9


def test_nearer_dots_hide_farther_ones_and_are_brighter():
    near, far = np.array([[0.02, 0.02, 0.5]]), np.array([[0.02, 0.02, -0.5]])  # off pixel borders
    views = dict(size=32, azimuths=(0.0, 180.0), elevation=0.0, radius=2)
    both = panels(render_points(np.concatenate([far, near]), **views))
    np.testing.assert_array_equal(both[0], panels(render_points(near, **views))[0])
    np.testing.assert_array_equal(both[1], panels(render_points(far, **views))[1])
    seen_near, seen_far = panels(render_points(near, **views))
    assert seen_near.min() < 1 and seen_near[covered(seen_near)].mean() > seen_far[covered(seen_far)].mean()


def test_dots_are_drawn_over_a_mesh_picture_and_fall_on_its_surface(ball):
    views = dict(size=SIZE, azimuths=(0.0, 90.0, 180.0), elevation=20.0)
    base = render_mesh(ball, **views)
    kept = base.copy()
    points = 0.95 * sample_surface(ball, 300, seed=1)[0]  # just inside the silhouette
    dots = render_points(points, **views, radius=0)
    over = render_points(points, **views, radius=0, base=base)
    np.testing.assert_array_equal(base, kept)  # base is not drawn on
    mask = covered(dots)
    assert mask.sum() > 100 and covered(base)[mask].all()  # the mesh and the dots line up
    np.testing.assert_array_equal(over[mask], dots[mask])
    np.testing.assert_array_equal(over[~mask], base[~mask])


def test_no_points_renders_the_background():
    np.testing.assert_array_equal(render_points(np.zeros((0, 3)), size=8, azimuths=(0.0,), background=0.0),
                                  np.zeros((8, 8, 3), np.float32))


# --- input checks -----------------------------------------------------------------------------------

TRIANGLE = Mesh(np.eye(3, dtype=np.float32), np.array([[0, 1, 2]]))


@pytest.mark.parametrize("call, match", [
    (lambda: render_mesh(Mesh(np.zeros((4, 2)), TRIANGLE.faces)),
     r"render_mesh: .*mesh.vertices \[N, 3\], got \(4, 2\)"),
    (lambda: render_mesh(Mesh(np.full((3, 3), np.nan), TRIANGLE.faces)), r"mesh.vertices has 9 non-finite"),
    (lambda: render_mesh(Mesh(TRIANGLE.vertices, np.zeros((2, 4), np.int64))), r"mesh.faces \[F, 3\].*got \(2, 4\)"),
    (lambda: render_mesh(Mesh(TRIANGLE.vertices, np.zeros((1, 3)))), r"mesh.faces \[F, 3\] of integers.*float64"),
    (lambda: render_mesh(Mesh(TRIANGLE.vertices, np.array([[0, 1, 3]]))),
     r"mesh.faces must index \[0, 3\), got \[0, 3\]"),
    (lambda: render_mesh(TRIANGLE, size=4), r"render_mesh: size must be an int >= 8 .*got 4"),
    (lambda: render_mesh(TRIANGLE, size=64.0), r"size must be an int >= 8 .*got 64.0"),
    (lambda: render_mesh(TRIANGLE, azimuths=()), r"azimuths must be a non-empty"),
    (lambda: render_mesh(TRIANGLE, azimuths=(0.0, np.inf)), r"azimuths must be .*finite"),
    (lambda: render_mesh(TRIANGLE, elevation=np.nan), r"elevation must be finite, got nan"),
    (lambda: render_mesh(TRIANGLE, up="w"), r"up must be one of 'x', 'y', 'z', got 'w'"),
    (lambda: render_mesh(TRIANGLE, bound=0.0), r"bound must be finite and > 0, got 0.0"),
    (lambda: render_mesh(TRIANGLE, colour=(1.0, 0.5)), r"colour must be a grey level or RGB in \[0, 1\]"),
    (lambda: render_mesh(TRIANGLE, background=2.0), r"background must be a grey level or RGB in \[0, 1\]"),
    (lambda: render_points(np.zeros((5, 2))), r"render_points: expected points \[N, 3\], got \(5, 2\)"),
    (lambda: render_points(np.zeros(3)), r"expected points \[N, 3\], got \(3,\)"),
    (lambda: render_points(np.array([[0.0, np.inf, 0.0]])), r"points has 1 non-finite"),
    (lambda: render_points(np.zeros((1, 3)), up="Y"), r"render_points: up must be one of .*got 'Y'"),
    (lambda: render_points(np.zeros((1, 3)), radius=-1), r"radius must be an int >= 0 .*got -1"),
    (lambda: render_points(np.zeros((1, 3)), radius=1.5), r"radius must be an int >= 0 .*got 1.5"),
    (lambda: render_points(np.zeros((1, 3)), colour=-0.1), r"render_points: colour must be"),
    (lambda: render_points(np.zeros((1, 3)), size=16, azimuths=(0.0, 90.0), base=np.ones((16, 16, 3))),
     r"expected base \[16, 32, 3\] for size 16 and 2 azimuths, got \(16, 16, 3\)"),
])
def test_bad_inputs_raise_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
