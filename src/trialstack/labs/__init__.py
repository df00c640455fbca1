"""Laboratory data: results, unit conversion to the study standard, reference ranges and CTCAE grading."""
