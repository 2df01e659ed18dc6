"""The 10-day chart of one pollutant: the data uPlot draws and the legend people read.

Nine days of history (today's average so far included) and tomorrow. Fixed colours make the
lines readable at a glance: the WHO guideline is a thick blue line, the 9-day average a
dashed orange one, the service's own forecast purple (with what it would have predicted on
the last days, so its error is visible) and the CAMS forecast grey and dotted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .assessment import BAND_COLOURS, BAND_LABELS, EAQI_UPPER_BOUNDS, LABELS, UNIT, WHO_24H_LIMITS
from .forecast import Forecaster
from .timeline import Timeline, mean

HISTORY_DAYS = 9
HISTORY_COLOUR = "#243447"
WHO_COLOUR = "#1f4fd1"
AVERAGE_COLOUR = "#f08c00"
MODEL_COLOUR = "#8b3fd1"
CAMS_COLOUR = "#6b7280"
EXTREME_CAP = {"pm2_5": 800.0, "pm10": 1200.0, "nitrogen_dioxide": 1000.0}


@dataclasses.dataclass(frozen=True)
class LegendItem:
    """One line of the legend: a swatch style and what it means."""

    key: str
    label: str
    colour: str
    style: str  # solid, thick, dashed, dotted or points


@dataclasses.dataclass(frozen=True)
class Row:
    """One day of the chart, also shown as a table for readers without JavaScript."""

    day: date
    average: float | None
    model: float | None = None
    cams: float | None = None
    is_forecast: bool = False


@dataclasses.dataclass(frozen=True)
class Chart:
    """Everything about one pollutant's chart."""

    pollutant: str
    rows: tuple[Row, ...]
    average: float | None
    model_method: str | None
    model_mae: float | None
    persistence_mae: float | None
    backtest_days: int

    @property
    def label(self) -> str:
        """Return the pollutant's short name."""
        return LABELS[self.pollutant]

    @property
    def limit(self) -> float:
        """Return the WHO 24-hour guideline level."""
        return WHO_24H_LIMITS[self.pollutant]

    @property
    def history_count(self) -> int:
        """Return how many days of history the chart shows."""
        return sum(not row.is_forecast for row in self.rows)

    @property
    def legend(self) -> tuple[LegendItem, ...]:
        """Return the legend, in the order the eye needs it."""
        days = self.history_count
        average = "no data" if self.average is None else f"{self.average:.1f} {UNIT}"
        model = "Our model's forecast for tomorrow"
        if self.model_method == "persistence":
            model += " (too little history to train: tomorrow = the last 24 hours)"
        if self.model_mae is not None:
            model += (
                f"; dots on past days: what it predicted the evening before "
                f"(error ±{self.model_mae:.1f} {UNIT} over {self.backtest_days} days)"
            )
        return (
            LegendItem("history", "Daily average of the past days (CAMS)", HISTORY_COLOUR, "solid"),
            LegendItem("who", f"WHO 24-hour guideline: {self.limit:g} {UNIT}", WHO_COLOUR, "thick"),
            LegendItem("average", f"{days}-day average: {average}", AVERAGE_COLOUR, "dashed"),
            LegendItem("model", model, MODEL_COLOUR, "points"),
            LegendItem("cams", "CAMS forecast for tomorrow (Open-Meteo)", CAMS_COLOUR, "dotted"),
        )

    def uplot(self) -> dict[str, Any]:
        """Return what ``static/chart.js`` hands to uPlot (JSON-serialisable)."""
        x = [
            int(datetime.combine(row.day, datetime.min.time(), UTC).timestamp())
            for row in self.rows
        ]
        history = [None if row.is_forecast else row.average for row in self.rows]
        cams: list[float | None] = [row.cams for row in self.rows]
        last = max((i for i, row in enumerate(self.rows) if not row.is_forecast), default=None)
        if last is not None and cams[-1] is not None:
            cams[last] = history[last]  # the dotted line starts from today
        model = [row.model for row in self.rows]
        count = len(self.rows)
        values = [v for v in (*history, *cams, *model, self.limit) if v is not None]
        top = max(values, default=self.limit) * 1.15
        bounds = (0.0, *EAQI_UPPER_BOUNDS[self.pollutant], EXTREME_CAP[self.pollutant])
        legend = {item.key: item.label for item in self.legend}
        return {
            "pollutant": self.pollutant,
            "title": f"{self.label} ({UNIT})",
            "unit": UNIT,
            "x": x,
            "yMax": round(top, 1),
            "series": [
                {
                    "key": "history",
                    "label": legend["history"],
                    "stroke": HISTORY_COLOUR,
                    "width": 2,
                    "values": history,
                    "points": True,
                },
                {
                    "key": "who",
                    "label": legend["who"],
                    "stroke": WHO_COLOUR,
                    "width": 4,
                    "values": [self.limit] * count,
                },
                {
                    "key": "average",
                    "label": legend["average"],
                    "stroke": AVERAGE_COLOUR,
                    "width": 2,
                    "dash": [8, 6],
                    "values": [self.average] * count,
                },
                {
                    "key": "model",
                    "label": legend["model"],
                    "stroke": MODEL_COLOUR,
                    "width": 2,
                    "values": model,
                    "points": True,
                },
                {
                    "key": "cams",
                    "label": legend["cams"],
                    "stroke": CAMS_COLOUR,
                    "width": 2,
                    "dash": [2, 4],
                    "values": cams,
                    "points": True,
                },
            ],
            "bands": [
                {"from": low, "to": high, "colour": colour, "label": label}
                for low, high, colour, label in zip(
                    bounds[:-1], bounds[1:], BAND_COLOURS, BAND_LABELS, strict=True
                )
            ],
        }


def build_chart(
    timeline: Timeline, pollutant: str, forecaster: Forecaster | None, model_tomorrow: float | None
) -> Chart:
    """Build the chart of one pollutant from the history and the forecasts."""
    backtest: Mapping[date, float] = (
        {day.day: day.predicted for day in forecaster.skill.days} if forecaster else {}
    )
    rows = [
        Row(day, timeline.daily_mean(pollutant, day), model=backtest.get(day))
        for day in timeline.history_days(HISTORY_DAYS)
    ]
    average = mean([row.average for row in rows])
    rows.append(
        Row(
            timeline.today + timedelta(days=1),
            None,
            model=model_tomorrow,
            cams=timeline.cams_tomorrow(pollutant),
            is_forecast=True,
        )
    )
    skill = forecaster.skill if forecaster else None
    return Chart(
        pollutant=pollutant,
        rows=tuple(rows),
        average=average,
        model_method=forecaster.method if forecaster else None,
        model_mae=skill.mae if skill else None,
        persistence_mae=skill.persistence_mae if skill else None,
        backtest_days=len(skill.days) if skill else 0,
    )
