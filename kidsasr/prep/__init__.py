"""Data prep (`kidsasr prep`): cleaning, alignment, filters, splits, the per-episode pipeline, output, runner
and report."""
