import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
from matplotlib import animation

from alexnet_edu.animation import animation_html, describe_jshtml


def test_the_frames_get_a_text_alternative_and_the_slider_a_name():
    fig, ax = plt.subplots(figsize=(2, 1), dpi=30)
    (line,) = ax.plot([0, 1], [0, 0])
    movie = animation.FuncAnimation(fig, lambda y: line.set_ydata([0, y]), frames=[0, 1])
    plt.close(fig)
    page = animation_html(movie, 'A line that "tilts" <up>', slider_label="Tilt",
                          default_mode="once").data
    assert '<img alt="A line that &quot;tilts&quot; &lt;up&gt;" id="_anim_img' in page
    assert 'class="anim-slider" aria-label="Tilt"' in page
    assert page.count('aria-label="') == 1 + 9 + 1   # slider, matplotlib's 9 buttons, the loop-mode form


def test_anything_else_is_refused():
    with pytest.raises(ValueError, match="to_jshtml"):
        describe_jshtml("<div>no animation</div>", "text")
