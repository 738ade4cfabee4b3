"""What a person sees: maps, charts, the HTML report, Markdown summaries, progress and the terminal
display. Reads what a run wrote; never the run configuration."""
