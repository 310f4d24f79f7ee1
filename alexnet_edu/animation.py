"""Matplotlib animations for the website, with a text alternative and labelled controls.

`FuncAnimation.to_jshtml` draws an animation as a page of frames with play buttons and a slider;
its buttons carry labels, but the frame image has no alternative text and the slider no label, so a
screen reader announces an unnamed image and an unnamed control (WCAG 1.1.1, 4.1.2). The buttons,
the slider and the loop-mode radio buttons are native HTML controls: they work from the keyboard
(Tab, Enter or Space, arrow keys).
"""

import html

from IPython.display import HTML

FRAME_IMAGE = '<img id="_anim_img'
SLIDER = 'class="anim-slider"'


def describe_jshtml(page: str, description: str, slider_label: str = "Frame") -> str:
    """`page`, a `to_jshtml` output, with `description` as the alternative text of its frames and
    `slider_label` as the name of its slider."""
    if FRAME_IMAGE not in page or SLIDER not in page:
        raise ValueError("not a matplotlib to_jshtml page: no frame image or slider found")
    alt = html.escape(description, quote=True)
    label = html.escape(slider_label, quote=True)
    page = page.replace(FRAME_IMAGE, f'<img alt="{alt}" id="_anim_img', 1)
    return page.replace(SLIDER, f'{SLIDER} aria-label="{label}"', 1)


def animation_html(movie, description: str, slider_label: str = "Frame", **to_jshtml) -> HTML:
    """Display a matplotlib animation as `movie.to_jshtml(**to_jshtml)` does, described for
    readers who cannot see it."""
    return HTML(describe_jshtml(movie.to_jshtml(**to_jshtml), description, slider_label))
