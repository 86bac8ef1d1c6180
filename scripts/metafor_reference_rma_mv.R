# metafor reference values for the three-level model (neuromodmap.evidence.rma_mv and robust).
# Run from the repository root:  Rscript scripts/metafor_reference_rma_mv.R
# Writes tests/evidence/reference/metafor_rma_mv.json, which tests/evidence/test_evidence_rma_mv.py reads
# (no R needed there). Each case holds its data (yi, vi, study, the model matrix) and metafor's
# rma.mv(yi, vi, mods, random = ~ 1 | study/effect) fit under REML and ML with z and t tests, plus
# robust(fit, cluster = study) (CR1, metafor's default) and robust(..., clubSandwich = TRUE) (CR2) when
# clubSandwich is installed.
suppressPackageStartupMessages({library(metafor); library(metadat); library(jsonlite)})

has_cs <- suppressMessages(requireNamespace("clubSandwich", quietly = TRUE))

fit_list <- function(res) {
  list(beta = unname(as.numeric(res$beta)), se = unname(res$se), zval = unname(res$zval), pval = unname(res$pval),
       ci_lb = unname(res$ci.lb), ci_ub = unname(res$ci.ub), sigma2 = unname(res$sigma2),
       QE = res$QE, QEdf = res$k - res$p, QEp = res$QEp, QM = res$QM, QMdf = unname(res$QMdf), QMp = res$QMp,
       ddf = unname(res$ddf), logLik = as.numeric(logLik(res)), deviance = as.numeric(deviance(res)),
       AIC = AIC(res), BIC = BIC(res), k = res$k, p = res$p, method = res$method, test = res$test)
}
robust_list <- function(res) {
  list(beta = unname(as.numeric(res$beta)), se = unname(res$se), tval = unname(res$zval), pval = unname(res$pval),
       ci_lb = unname(res$ci.lb), ci_ub = unname(res$ci.ub), QM = res$QM, QMdf = unname(res$QMdf),
       QMp = res$QMp, dfs = unname(res$dfs), n = res$n, vbest = res$vbest)
}

case <- function(name, dat, study, effect, mods) {
  dat$study_ <- dat[[study]]
  dat$effect_ <- dat[[effect]]
  fits <- list()
  X <- NULL
  for (method in c("REML", "ML")) for (test in c("z", "t")) {
    res <- if (is.null(mods)) {
      rma.mv(yi, vi, random = ~ 1 | study_/effect_, data = dat, method = method, test = test)
    } else {
      rma.mv(yi, vi, mods = mods, random = ~ 1 | study_/effect_, data = dat, method = method, test = test)
    }
    X <- res$X
    entry <- fit_list(res)
    entry$robust_cr1 <- robust_list(robust(res, cluster = study_))
    if (has_cs) entry$robust_cr2 <- robust_list(robust(res, cluster = study_, clubSandwich = TRUE))
    fits[[paste(method, test, sep = "_")]] <- entry
  }
  list(name = name, yi = dat$yi, vi = dat$vi, study = as.character(dat$study_),
       X = unname(lapply(seq_len(ncol(X)), function(j) unname(X[, j]))), colnames = colnames(X),
       mods = if (is.null(mods)) NULL else deparse(mods), fits = fits)
}

bornmann <- escalc(measure = "OR", ai = waward, n1i = wtotal, ci = maward, n2i = mtotal, data = dat.bornmann2007)
cases <- list(
  case("konstantopoulos2011", dat.konstantopoulos2011, "district", "school", NULL),
  case("konstantopoulos2011_year", dat.konstantopoulos2011, "district", "school", ~ I(year - 1990)),
  case("assink2016", dat.assink2016, "study", "esid", NULL),
  case("assink2016_deltype", dat.assink2016, "study", "esid", ~ deltype),
  case("assink2016_year_pub", dat.assink2016, "study", "esid", ~ year + pubstatus),
  case("bornmann2007", bornmann, "study", "obs", NULL),
  case("bornmann2007_type", bornmann, "study", "obs", ~ type)
)
# per-subgroup three-level fits (the pipeline's --by): assink2016 split by type of delinquent behaviour
subgroups <- lapply(setNames(nm = sort(unique(dat.assink2016$deltype))), function(level) {
  fit_list(rma.mv(yi, vi, random = ~ 1 | study/esid, data = dat.assink2016, subset = deltype == level))
})
# robust() with clusters other than the study: coarser (districts grouped by district %% 4) and finer (schools)
k11 <- dat.konstantopoulos2011
k11_fit <- rma.mv(yi, vi, mods = ~ I(year - 1990), random = ~ 1 | district/school, data = k11)
other_clusters <- list(
  coarse = list(cluster = as.character(k11$district %% 4),
                cr1 = robust_list(robust(k11_fit, cluster = k11$district %% 4))),
  fine = list(cluster = as.character(k11$study), cr1 = robust_list(robust(k11_fit, cluster = k11$study))))
out <- list(metafor = as.character(packageVersion("metafor")),
            clubSandwich = if (has_cs) as.character(packageVersion("clubSandwich")) else NULL,
            R = R.version.string, created = format(Sys.Date()), cases = cases,
            assink2016_deltype = list(deltype = dat.assink2016$deltype, fits = subgroups),
            konstantopoulos2011_year_clusters = other_clusters)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           "tests/evidence/reference/metafor_rma_mv.json")
