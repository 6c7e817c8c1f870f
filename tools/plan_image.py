"""The memory plan as a picture (`edgecnn inspect MODEL --plan-image plan.png`), drawn with
Pillow: time runs left to right (one column per step, labelled with its operator), arena
offsets bottom to top, and each buffer is a box over the bytes it holds while it is live.
"""

from __future__ import annotations

# Areas of the picture, in pixels.
WIDTH, HEIGHT = 760, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 12, 34, 112
BACKGROUND = (255, 255, 255)
PALETTE = [(78, 121, 167), (242, 142, 43), (225, 87, 89), (118, 183, 178), (89, 161, 79),
           (237, 201, 72), (176, 122, 161), (255, 157, 167), (156, 117, 95), (186, 176, 172)]


def buffer_boxes(plan, width: int = WIDTH, height: int = HEIGHT):
    """(buffer, (x0, y0, x1, y1)) for each non-empty buffer, in image coordinates."""
    steps = max(plan.steps, 1)
    arena = max(plan.arena_size, 1)
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    boxes = []
    for buf in plan.buffers:
        if not buf.size:
            continue
        x0 = LEFT + plot_w * buf.first / steps
        x1 = LEFT + plot_w * (buf.last + 1) / steps
        y1 = TOP + plot_h * (1 - buf.offset / arena)
        y0 = TOP + plot_h * (1 - (buf.offset + buf.size) / arena)
        boxes.append((buf, (round(x0), round(y0), max(round(x1) - 1, round(x0)),
                            max(round(y1) - 1, round(y0)))))
    return boxes


def draw_plan(plan, qgraph, path: str, title: str) -> None:
    from PIL import Image, ImageDraw
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((LEFT, 8), f"{title}: arena {plan.arena_size:,} bytes (lower bound "
              f"{plan.lower_bound:,}), {plan.steps} steps", fill=(0, 0, 0))
    for k, (buf, box) in enumerate(buffer_boxes(plan)):
        draw.rectangle(box, fill=PALETTE[k % len(PALETTE)], outline=(40, 40, 40))
        label = f"{buf.size:,}"
        if box[2] - box[0] > 6 * len(label) + 4 and box[3] - box[1] > 12:
            draw.text((box[0] + 3, box[1] + 2), label, fill=(255, 255, 255))
    plot_bottom = HEIGHT - BOTTOM
    draw.line([(LEFT, TOP), (LEFT, plot_bottom), (WIDTH - RIGHT, plot_bottom)], fill=(0, 0, 0))
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + (plot_bottom - TOP) * (1 - fraction)
        draw.text((4, y - 6), f"{int(plan.arena_size * fraction):,}", fill=(0, 0, 0))
    steps = max(plan.steps, 1)
    every = max(1, -(-steps // 24))  # at most ~24 operator labels
    for step, node in enumerate(qgraph.nodes):
        if step % every:
            continue
        x = LEFT + (WIDTH - LEFT - RIGHT) * (step + 0.5) / steps
        label = Image.new("RGB", (90, 12), BACKGROUND)
        label_draw = ImageDraw.Draw(label)
        text = node.op.replace("DEPTHWISE_CONV_2D", "DEPTHWISE")[:15]
        # right-aligned, so that once turned upright the name ends at the axis
        label_draw.text((90 - label_draw.textlength(text), 0), text, fill=(0, 0, 0))
        image.paste(label.rotate(90, expand=True), (round(x) - 6, plot_bottom + 4))
    draw.text((4, HEIGHT - 14), "arena offset (bytes) up, steps (operators) left to right; "
              "one box per buffer, labelled with its size", fill=(90, 90, 90))
    image.save(path)
