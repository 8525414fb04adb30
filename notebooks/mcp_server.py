"""The small MCP server notebooks/mcp.ipynb uses: statistics of a list of numbers, over stdio.

Written with the official ``mcp`` SDK; any MCP client can run it (``python mcp_server.py``).
"""

from __future__ import annotations

import statistics

from mcp.server.mcpserver import MCPServer

server = MCPServer("stats")


@server.tool()
def describe(numbers: list[float]) -> dict[str, float]:
    """Count, mean, median, sample standard deviation, minimum and maximum of a list of numbers."""
    if not numbers:
        raise ValueError("describe needs at least one number")
    return {
        "count": len(numbers),
        "mean": round(statistics.fmean(numbers), 2),
        "median": statistics.median(numbers),
        "stdev": round(statistics.stdev(numbers), 2) if len(numbers) > 1 else 0.0,
        "min": min(numbers),
        "max": max(numbers),
    }


@server.tool()
def percentile(numbers: list[float], q: float) -> float:
    """The q-th percentile (0 to 100) of a list of numbers, interpolated between the closest ranks."""
    if not numbers or not 0 <= q <= 100:
        raise ValueError("percentile needs numbers and a q between 0 and 100")
    ordered = sorted(numbers)
    rank = (len(ordered) - 1) * q / 100
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 2)


if __name__ == "__main__":
    server.run()
