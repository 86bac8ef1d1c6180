# metafor's forest() on the data of the forest-plot comparison in docs/evidence.md.
# Run from the repository root after `python scripts/forest_comparison.py` has written the
# inputs (build/forest_compare_*.csv):  Rscript scripts/forest_comparison.R
# Writes docs/img/forest_metafor_bcg.png and docs/img/forest_metafor_multilevel.png.
suppressPackageStartupMessages(library(metafor))

bcg <- read.csv("build/forest_compare_bcg.csv", stringsAsFactors = FALSE)
res <- rma(yi, vi, data = bcg, method = "REML", slab = label)
png("docs/img/forest_metafor_bcg.png", width = 1800, height = 1100, res = 200)
forest(res, atransf = exp, at = log(c(0.05, 0.25, 1, 4)), addpred = TRUE, header = TRUE,
       showweights = TRUE, xlab = "Risk ratio (log scale)", cex = 0.75,
       mlab = "RE model (REML)")
invisible(dev.off())

ml <- read.csv("build/forest_compare_multilevel.csv", stringsAsFactors = FALSE)
fit <- rma.mv(yi, vi, random = ~ 1 | study/effect, data = ml, slab = label)
png("docs/img/forest_metafor_multilevel.png", width = 1800, height = 2000, res = 200)
forest(fit, addpred = TRUE, header = TRUE, showweights = TRUE, xlab = "Standardised mean difference",
       cex = 0.7, mlab = "Three-level model (REML)")
invisible(dev.off())
