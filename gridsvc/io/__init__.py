"""File input and output: boundary files, rosters, gazetteers."""
