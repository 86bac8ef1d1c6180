# metafor reference values for the shipped Gaynes 2011 (AHRQ CER 33) data sets.
# Run from the repository root:  Rscript scripts/metafor_reference_evidence.R
# Writes tests/evidence/reference/gaynes2011_metafor.json, which the test suite reads (no R needed there).
# The general metafor oracle (every measure, estimator, test and method over metadat data sets) is
# scripts/metafor_reference_univariate.R; the three-level model's is scripts/metafor_reference_rma_mv.R.
# The per-target fits use the CSV's target column; the connectivity meta-regression reads
# tests/evidence/reference/gaynes2011_target_sites.csv (yi, vi and each site's connectivity to the Fox 2012
# sgACC on enigma-schaefer400, written by neuromodmap.evidence.datasets.target_metaregression; the test
# recomputes those inputs and checks they still agree before comparing the fits).
suppressPackageStartupMessages({library(metafor); library(jsonlite)})

ci_to_vi <- function(lb, ub) ((log(ub) - log(lb)) / (2 * qnorm(0.975)))^2
fit_list <- function(res) {
  list(beta = unname(as.numeric(res$beta)), se = unname(res$se), zval = unname(res$zval), pval = unname(res$pval),
       ci_lb = unname(res$ci.lb), ci_ub = unname(res$ci.ub), tau2 = res$tau2, i2 = res$I2, q = res$QE,
       qm = res$QM, qm_p = res$QMp, k = res$k, method = res$method, test = res$test)
}
out <- list(metafor = as.character(packageVersion("metafor")), R = R.version.string,
            created = format(Sys.Date()))
for (name in c("fig13", "fig10")) {
  file <- c(fig13 = "gaynes2011_fig13_rtms_response.csv", fig10 = "gaynes2011_fig10_rtms_response_tier1.csv")[[name]]
  d <- read.csv(file.path("src/neuromodmap/evidence/data", file), stringsAsFactors = FALSE)
  d$yi <- log(d$effect)
  d$vi <- ci_to_vi(d$effect_ci_lb, d$effect_ci_ub)
  groups <- unique(d$subgroup)
  sub <- lapply(groups, function(g) fit_list(rma(yi, vi, data = d, subset = subgroup == g, method = "REML")))
  names(sub) <- groups
  est <- sapply(sub, function(s) s$beta); se <- sapply(sub, function(s) s$se)
  two_stage <- fit_list(rma(est, sei = se, method = "DL"))
  all_reml <- fit_list(rma(yi, vi, data = d, method = "REML"))
  all_dl <- fit_list(rma(yi, vi, data = d, method = "DL"))
  year_reml <- fit_list(rma(yi, vi, mods = ~ year, data = d, method = "REML"))
  year_knha <- fit_list(rma(yi, vi, mods = ~ year, data = d, method = "REML", test = "knha"))
  group_dl <- fit_list(rma(yi, vi, mods = ~ factor(subgroup, levels = groups), data = d, method = "DL"))
  out[[name]] <- list(yi = d$yi, vi = d$vi, subgroups = sub, two_stage_dl = two_stage, all_reml = all_reml,
                      all_dl = all_dl, mods_year_reml = year_reml, mods_year_reml_knha = year_knha,
                      mods_subgroup_dl = group_dl)
  placed <- d[d$target != "" & !is.na(d$target), ]
  by_target <- list()
  for (code in unique(placed$target)) {
    sub_t <- placed[placed$target == code, ]
    if (nrow(sub_t) >= 2) by_target[[code]] <- fit_list(rma(yi, vi, data = sub_t, method = "REML"))
  }
  out[[name]]$by_target <- by_target
}
sites <- read.csv("tests/evidence/reference/gaynes2011_target_sites.csv", stringsAsFactors = FALSE)
out$target_metareg <- list(
  reml = fit_list(rma(yi, vi, mods = ~ connectivity, data = sites, method = "REML")),
  reml_knha = fit_list(rma(yi, vi, mods = ~ connectivity, data = sites, method = "REML", test = "knha")),
  connectivity = sites$connectivity, study = sites$study)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/evidence/reference/gaynes2011_metafor.json")
