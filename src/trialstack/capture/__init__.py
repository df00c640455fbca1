"""EDC capture: subjects, visits and windows, forms and item data, edit checks, SDV, freeze and lock."""
