# metafor as the oracle for neuromodmap.evidence's univariate model: escalc, rma (every estimator and
# test neuromodmap supports, with and without moderators, weighted and unweighted), predict, confint
# (Q-profile tau^2 CI), subgroups, leave1out, cumul, regtest and trimfill, over metadat data sets.
#
# Run from the repository root (R with metafor and metadat, e.g. Debian r-cran-metafor r-cran-metadat):
#   Rscript scripts/metafor_reference_univariate.R
# Writes tests/evidence/reference/metafor_univariate.json; tests/evidence/test_evidence_metafor.py reads it
# (no R needed there) and checks every figure. Each case names the metafor call that produced it.
suppressPackageStartupMessages({library(metafor); library(metadat); library(jsonlite)})

METHODS <- c("EE", "DL", "HE", "SJ", "PM", "ML", "REML", "HS", "HSk", "EB")
inputs <- list()   # id -> yi, vi (+ moderators, group)
cases <- list()    # one metafor call each
escalc_cases <- list()
datasets_used <- character(0)
n_errors <- 0L

num <- function(x) if (is.null(x)) NULL else unname(as.numeric(x))
add_case <- function(case) cases[[length(cases) + 1L]] <<- case

fit_figures <- function(res) {
  fs <- fitstats(res)
  out <- list(beta = num(res$beta), se = num(res$se), zval = num(res$zval), pval = num(res$pval),
              ci_lb = num(res$ci.lb), ci_ub = num(res$ci.ub), tau2 = num(res$tau2), se_tau2 = num(res$se.tau2),
              QE = num(res$QE), QEp = num(res$QEp), QM = num(res$QM), QMp = num(res$QMp),
              I2 = num(res$I2), H2 = num(res$H2), R2 = num(res$R2),
              logLik = num(fs[1]), deviance = num(fs[2]), AIC = num(fs[3]), BIC = num(fs[4]), AICc = num(fs[5]))
  if (res$int.only) {
    p <- predict(res)
  } else {
    p <- predict(res, newmods = colMeans(res$X[, -1, drop = FALSE]))
  }
  out$pred <- list(pred = num(p$pred), se = num(p$se), ci_lb = num(p$ci.lb), ci_ub = num(p$ci.ub),
                   pi_lb = num(p$pi.lb), pi_ub = num(p$pi.ub))
  if (res$method != "EE") {
    ci <- try(suppressWarnings(confint(res)), silent = TRUE)
    if (!inherits(ci, "try-error")) {
      r <- ci$random
      out$tau2_ci <- num(r["tau^2", c("ci.lb", "ci.ub")])
      out$I2_ci <- num(r["I^2(%)", c("ci.lb", "ci.ub")])
      out$H2_ci <- num(r["H^2", c("ci.lb", "ci.ub")])
    }
  }
  out
}

table_figures <- function(tab) {
  tab <- as.data.frame(tab)
  list(estimate = num(tab$estimate), se = num(tab$se), stat = num(if (!is.null(tab$zval)) tab$zval else tab$tval),
       pval = num(tab$pval), ci_lb = num(tab$ci.lb), ci_ub = num(tab$ci.ub), Q = num(tab$Q), Qp = num(tab$Qp),
       tau2 = num(tab$tau2), I2 = num(tab$I2), H2 = num(tab$H2))
}

safe <- function(expr) {
  r <- try(suppressWarnings(expr), silent = TRUE)
  if (inherits(r, "try-error")) { n_errors <<- n_errors + 1L; return(NULL) }
  r
}

# --- one analysis block: inputs yi/vi (+ moderators / groups) and every model on them -------------------
analyse <- function(id, yi, vi, mods = NULL, group = NULL, methods = METHODS, sensitivity = TRUE,
                    source = "") {
  ok <- is.finite(yi) & is.finite(vi)
  if (!is.null(mods)) ok <- ok & stats::complete.cases(mods)
  if (!is.null(group)) ok <- ok & !is.na(group)
  yi <- yi[ok]; vi <- vi[ok]
  if (!is.null(mods)) mods <- mods[ok, , drop = FALSE]
  if (!is.null(group)) group <- as.character(group[ok])
  X <- NULL
  if (!is.null(mods)) {
    X <- model.matrix(~ ., data = mods)[, -1, drop = FALSE]
    X <- X[, apply(X, 2, function(x) length(unique(x)) > 1), drop = FALSE]
  }
  message(sprintf("%s  %s (k = %d)", format(Sys.time(), "%H:%M:%S"), id, length(yi)))
  inputs[[id]] <<- list(yi = yi, vi = vi, source = source,
                        mods = if (is.null(X)) NULL else list(names = colnames(X), X = unname(X)),
                        group = group)
  k <- length(yi)
  for (m in methods) for (test in c("z", "knha")) {
    res <- safe(rma(yi, vi, method = m, test = test))
    if (!is.null(res)) add_case(list(kind = "rma", input = id, method = m, test = test, mods = FALSE,
                                     weighted = TRUE, call = sprintf("rma(yi, vi, method=\"%s\", test=\"%s\")", m, test),
                                     expected = fit_figures(res)))
    if (!is.null(X) && k > ncol(X) + 2) {
      res <- safe(rma(yi, vi, mods = X, method = m, test = test))
      if (!is.null(res)) add_case(list(kind = "rma", input = id, method = m, test = test, mods = TRUE,
                                       weighted = TRUE,
                                       call = sprintf("rma(yi, vi, mods=X, method=\"%s\", test=\"%s\")", m, test),
                                       expected = fit_figures(res)))
    }
  }
  for (m in intersect(c("EE", "DL", "REML"), methods)) {
    for (test in c("t", "adhoc")) {
      res <- safe(rma(yi, vi, method = m, test = test))
      if (!is.null(res)) add_case(list(kind = "rma", input = id, method = m, test = test, mods = FALSE, weighted = TRUE,
                                       call = sprintf("rma(yi, vi, method=\"%s\", test=\"%s\")", m, test),
                                       expected = fit_figures(res)))
    }
    for (test in c("z", "knha")) for (with_mods in c(FALSE, TRUE)) {
      if (with_mods && (is.null(X) || k <= ncol(X) + 2)) next
      res <- safe(if (with_mods) rma(yi, vi, mods = X, method = m, test = test, weighted = FALSE)
                  else rma(yi, vi, method = m, test = test, weighted = FALSE))
      if (!is.null(res)) add_case(list(kind = "rma", input = id, method = m, test = test, mods = with_mods,
                                       weighted = FALSE,
                                       call = sprintf("rma(yi, vi,%s method=\"%s\", test=\"%s\", weighted=FALSE)",
                                                      if (with_mods) " mods=X," else "", m, test),
                                       expected = fit_figures(res)))
    }
  }
  if (!is.null(group)) {
    # subgroups as metafor's docs do them: one fit per group, then Q-between from an equal-effects
    # meta-regression of the group estimates (rma(est, sei=se, mods=~grp, method="EE")$QM)
    for (m in intersect(c("DL", "REML"), methods)) for (test in c("z", "knha")) {
      groups <- unique(group)
      fits <- lapply(groups, function(g) safe(rma(yi, vi, subset = group == g, method = m, test = test)))
      names(fits) <- groups
      fits <- fits[!sapply(fits, is.null)]
      # neuromodmap pools only groups with k >= 2, as metafor's rma (k = 1 fits are not pooled there)
      fits <- fits[sapply(fits, function(f) f$k >= 2)]
      if (length(fits) < 2) next
      est <- sapply(fits, function(f) c(f$beta)); se <- sapply(fits, function(f) f$se)
      qb <- rma(est, sei = se, mods = ~ factor(names(fits)), method = "EE")
      add_case(list(kind = "subgroup", input = id, method = m, test = test,
                    call = sprintf("rma(yi, vi, subset=group==g, method=\"%s\", test=\"%s\") per group; rma(est, sei=se, mods=~grp, method=\"EE\")$QM", m, test),
                    expected = list(groups = names(fits), estimate = num(est), se = num(se),
                                    tau2 = num(sapply(fits, function(f) f$tau2)),
                                    ci_lb = num(sapply(fits, function(f) f$ci.lb)),
                                    ci_ub = num(sapply(fits, function(f) f$ci.ub)),
                                    Q_between = num(qb$QM), Q_between_p = num(qb$QMp),
                                    Q_between_df = length(fits) - 1)))
    }
  }
  if (!sensitivity || k < 3) return(invisible())
  for (m in intersect(c("EE", "DL", "REML", "PM"), methods)) for (test in c("z", "knha")) {
    res <- safe(rma(yi, vi, method = m, test = test))
    if (is.null(res)) next
    # leave1out/cumul refit k times with k x k matrices in R: kept to k <= 70 and, beyond
    # k = 30, to DL and REML, so that the script runs in minutes on a small machine
    if (k <= 70 && (k <= 30 || m %in% c("DL", "REML"))) {
      l1 <- safe(leave1out(res))
      if (!is.null(l1)) add_case(list(kind = "leave1out", input = id, method = m, test = test,
                                      call = sprintf("leave1out(rma(yi, vi, method=\"%s\", test=\"%s\"))", m, test),
                                      expected = table_figures(l1)))
      cu <- safe(cumul(res))
      if (!is.null(cu)) add_case(list(kind = "cumul", input = id, method = m, test = test,
                                      call = sprintf("cumul(rma(yi, vi, method=\"%s\", test=\"%s\"))", m, test),
                                      expected = table_figures(cu)))
    }
    for (model in c("rma", "lm")) {
      if (model == "lm" && !(m == "REML" && test == "z")) next
      rt <- safe(regtest(res, model = model))
      if (!is.null(rt)) add_case(list(kind = "regtest", input = id, method = m, test = test, model = model,
                                      call = sprintf("regtest(rma(yi, vi, method=\"%s\", test=\"%s\"), model=\"%s\")", m, test, model),
                                      expected = list(stat = num(rt$zval), pval = num(rt$pval), df = num(rt$dfs),
                                                      est = num(rt$est), ci_lb = num(rt$ci.lb), ci_ub = num(rt$ci.ub))))
    }
    for (estimator in c("L0", "R0")) {
      tf <- safe(trimfill(res, estimator = estimator))
      if (is.null(tf)) next
      add_case(list(kind = "trimfill", input = id, method = m, test = test, estimator = estimator,
                    call = sprintf("trimfill(rma(yi, vi, method=\"%s\", test=\"%s\"), estimator=\"%s\")", m, test, estimator),
                    expected = list(k0 = tf$k0, side = tf$side, se_k0 = num(tf$se.k0), test = tf$test,
                                    beta = num(tf$beta), se = num(tf$se), zval = num(tf$zval), pval = num(tf$pval),
                                    ci_lb = num(tf$ci.lb), ci_ub = num(tf$ci.ub), tau2 = num(tf$tau2),
                                    QE = num(tf$QE), I2 = num(tf$I2), H2 = num(tf$H2),
                                    filled_yi = num(if (tf$k0 > 0) tf$yi[tf$fill] else numeric(0)))))
    }
  }
  invisible()
}

# --- escalc: every measure, with metafor's defaults and the zero-cell options -----------------------------
es_case <- function(id, dataset, measure, data, args, options = list(), source = "") {
  call_args <- c(list(measure = measure), lapply(args, function(col) data[[col]]), options)
  es <- safe(do.call(escalc, call_args))
  if (is.null(es)) return(NULL)
  datasets_used <<- union(datasets_used, dataset)
  escalc_cases[[length(escalc_cases) + 1L]] <<- list(
    id = id, dataset = dataset, measure = measure, args = args, options = options,
    data = lapply(args, function(col) num(data[[col]])),
    call = sprintf("escalc(\"%s\", %s%s, data=%s)", measure,
                   paste(sprintf("%s=%s", names(args), unlist(args)), collapse = ", "),
                   if (length(options)) paste0(", ", paste(sprintf("%s=%s", names(options),
                     sapply(options, function(o) if (is.character(o)) sprintf("\"%s\"", o) else as.character(o))),
                     collapse = ", ")) else "",
                   dataset),
    expected = list(yi = num(es$yi), vi = num(es$vi)))
  es
}

spec <- function(dataset, data, measure, args, mods = NULL, group = NULL, options = list(), analyse_it = TRUE,
                 methods = METHODS, tag = "") {
  id <- paste0(dataset, "/", measure, tag)
  es <- es_case(id, dataset, measure, data, args, options)
  if (is.null(es) || !analyse_it) return(invisible())
  analyse(id, es$yi, es$vi, mods = if (is.null(mods)) NULL else data[, mods, drop = FALSE],
          group = if (is.null(group)) NULL else data[[group]], methods = methods,
          source = sprintf("escalc(\"%s\") on metadat::%s", measure, dataset))
}

tab2 <- list(ai = "tpos", bi = "tneg", ci = "cpos", di = "cneg")
for (ms in c("RR", "OR", "RD", "PETO")) spec("dat.bcg", dat.bcg, ms, tab2, mods = c("ablat", "alloc"), group = "alloc")
spec("dat.bcg", dat.bcg, "RR", tab2, mods = c("ablat", "year"), analyse_it = TRUE, tag = "~ablat+year")
# a regression on ablat alone (the metafor docs' meta-regression)
spec("dat.bcg", dat.bcg, "RR", tab2, mods = c("ablat"), tag = "~ablat")
narm <- list(ai = "ai", n1i = "n1i", ci = "ci", n2i = "n2i")
egger <- dat.egger2001
for (ms in c("OR", "RR", "PETO", "RD")) spec("dat.egger2001", egger, ms, narm, mods = "year")
li <- dat.li2007
for (ms in c("OR", "PETO", "RD")) spec("dat.li2007", li, ms, narm, mods = "year")
spec("dat.li2007", li, "OR", narm, options = list(drop00 = TRUE), tag = "+drop00")
spec("dat.li2007", li, "OR", narm, options = list(to = "all", add = 0.25), tag = "+to=all,add=0.25", analyse_it = FALSE)
spec("dat.li2007", li, "RR", narm, options = list(to = "if0all"), tag = "+to=if0all", analyse_it = FALSE)
spec("dat.li2007", li, "OR", narm, options = list(to = "none"), tag = "+to=none", analyse_it = FALSE)
niel <- dat.nielweise2007
spec("dat.nielweise2007", niel, "OR", narm)
spec("dat.nielweise2007", niel, "RR", narm, options = list(drop00 = TRUE), tag = "+drop00")
spec("dat.nielweise2007", niel, "RR", narm, analyse_it = FALSE)
spec("dat.nielweise2007", niel, "RD", narm, options = list(vtype = "UB"), tag = "+UB", analyse_it = FALSE)
spec("dat.nielweise2007", niel, "RD", narm, options = list(vtype = "AV"), tag = "+AV", analyse_it = FALSE)
spec("dat.hine1989", dat.hine1989, "RD", narm)
spec("dat.lee2004", dat.lee2004, "OR", narm, mods = "year")
spec("dat.laopaiboon2015", dat.laopaiboon2015, "RR", narm, mods = "age")
lau <- dat.lau1992
spec("dat.lau1992", lau, "OR", narm, mods = "year")
spec("dat.lau1992", lau, "PETO", narm, analyse_it = FALSE)
yus <- subset(dat.yusuf1985, table == "6")
spec("dat.yusuf1985[table 6]", yus, "PETO", narm)
spec("dat.anand1999", dat.anand1999, "OR", narm, mods = "intensity", group = "intensity")
spec("dat.damico2009", dat.damico2009, "OR", list(ai = "xt", n1i = "nt", ci = "xc", n2i = "nc"),
     mods = "conceal", group = "blind")
spec("dat.hahn2001", dat.hahn2001, "OR", narm)
spec("dat.graves2010", dat.graves2010, "RR", narm)
spec("dat.axfors2021", dat.axfors2021, "OR", list(ai = "hcq_arm_event", n1i = "hcq_arm_total", ci = "control_arm_event",
     n2i = "control_arm_total"), group = "Published")
spec("dat.viechtbauer2021", dat.viechtbauer2021, "OR", list(ai = "xTi", n1i = "nTi", ci = "xCi", n2i = "nCi"),
     mods = "dose")
spec("dat.dorn2007", dat.dorn2007, "RR", list(ai = "x.a", n1i = "n.a", ci = "x.p", n2i = "n.p"), mods = "year")
spec("dat.hartmannboyce2018", dat.hartmannboyce2018, "RR", list(ai = "x.nrt", n1i = "n.nrt", ci = "x.ctrl",
     n2i = "n.ctrl"), group = "treatment", methods = c("EE", "DL", "REML", "PM"))
spec("dat.landenberger2005", dat.landenberger2005, "OR", list(ai = "n.cbt.non", bi = "n.cbt.rec", ci = "n.ctrl.non",
     di = "n.ctrl.rec"), mods = "length")
# incidence rates
rates <- list(x1i = "x1i", t1i = "t1i", x2i = "x2i", t2i = "t2i")
for (ms in c("IRR", "IRD")) spec("dat.hart1999", dat.hart1999, ms, rates, methods = METHODS)
for (ms in c("IRR", "IRD")) spec("dat.nielweise2008", dat.nielweise2008, ms, rates)
spec("dat.nielweise2008", dat.nielweise2008, "IRR", rates, options = list(drop00 = TRUE, to = "all"), tag = "+to=all",
     analyse_it = FALSE)
# two groups' means
means <- list(m1i = "m1i", sd1i = "sd1i", n1i = "n1i", m2i = "m2i", sd2i = "sd2i", n2i = "n2i")
for (ms in c("SMD", "MD", "ROM")) spec("dat.normand1999", dat.normand1999, ms, means)
for (vt in c("UB", "LS2", "AV")) spec("dat.normand1999", dat.normand1999, "SMD", means, options = list(vtype = vt),
                                       tag = paste0("+", vt), analyse_it = FALSE)
spec("dat.normand1999", dat.normand1999, "MD", means, options = list(vtype = "HO"), tag = "+HO", analyse_it = FALSE)
cur <- dat.curtis1998
for (ms in c("ROM", "SMD", "MD")) spec("dat.curtis1998", cur, ms, means, mods = c("time", "method"), group = "fungrp")
for (vt in c("HO", "AV", "AVHO")) spec("dat.curtis1998", cur, "ROM", means, options = list(vtype = vt),
                                        tag = paste0("+", vt), analyse_it = FALSE)
gib <- dat.gibson2002
for (ms in c("SMD", "MD", "ROM")) spec("dat.gibson2002", gib, ms, means)
# one group measured twice (pre-post / crossover). metadat 1.2 has no raw pre-post data set (dat.morris2008
# came later), so these use two-group data read as one group measured twice: the "after" and "before"
# columns are the two arms, ni the first arm's n, ri a stated correlation. The point is the formula.
pp <- transform(dat.curtis1998, ni = n1i, ri = rep(c(0.3, 0.5, 0.7, 0.9), length.out = nrow(dat.curtis1998)))
change <- list(m1i = "m1i", sd1i = "sd1i", m2i = "m2i", sd2i = "sd2i", ni = "ni", ri = "ri")
for (ms in c("SMCC", "SMCR", "MC")) spec("dat.curtis1998[pre-post]", pp, ms,
                                         if (ms == "SMCR") change[c("m1i", "sd1i", "m2i", "ni", "ri")] else change,
                                         mods = "time")
for (ms in c("SMCC", "SMCR")) spec("dat.curtis1998[pre-post]", pp, ms,
                                   if (ms == "SMCR") change[c("m1i", "sd1i", "m2i", "ni", "ri")] else change,
                                   options = list(vtype = "LS2"), tag = "+LS2", analyse_it = FALSE)
pp2 <- transform(dat.normand1999, ni = n1i, ri = 0.6)
for (ms in c("SMCC", "SMCR", "MC")) spec("dat.normand1999[pre-post]", pp2, ms,
                                         if (ms == "SMCR") change[c("m1i", "sd1i", "m2i", "ni", "ri")] else change)
# single proportions
props <- list(xi = "xi", ni = "ni")
for (ms in c("PLO", "PR", "PAS", "PFT")) spec("dat.pritz1997", dat.pritz1997, ms, props)
for (ms in c("PLO", "PR", "PAS", "PFT")) spec("dat.debruin2009", dat.debruin2009, ms, props, mods = "scq",
                                              group = "ethnicity")
for (ms in c("PLO", "PAS")) spec("dat.pagliaro1992", dat.pagliaro1992, ms, props, group = "trt")
spec("dat.hannum2020", dat.hannum2020, "PLO", props, mods = "percentOlfactoryLoss")
spec("dat.pritz1997", dat.pritz1997, "PR", props, options = list(vtype = "UB"), tag = "+UB", analyse_it = FALSE)
spec("dat.pritz1997", dat.pritz1997, "PLO", props, options = list(vtype = "AV"), tag = "+AV", analyse_it = FALSE)
spec("dat.pritz1997", dat.pritz1997, "PAS", props, options = list(add = 0.5), tag = "+add=0.5", analyse_it = FALSE)
# correlations
cors <- list(ri = "ri", ni = "ni")
for (ms in c("ZCOR", "COR")) spec("dat.mcdaniel1994", dat.mcdaniel1994, ms, cors, mods = "struct", group = "type")
for (ms in c("ZCOR", "COR")) spec("dat.molloy2014", dat.molloy2014, ms, cors, mods = c("meanage", "quality"))
for (ms in c("ZCOR", "COR")) spec("dat.craft2003", dat.craft2003, ms, cors, mods = "sport")
spec("dat.cohen1981", dat.cohen1981, "ZCOR", cors)
spec("dat.woods2010", dat.woods2010, "COR", list(ri = "r", ni = "N"))
spec("dat.nakagawa2007", dat.nakagawa2007, "ZCOR", list(ri = "Correlation", ni = "SampleSize"))
spec("dat.crede2010", dat.crede2010, "ZCOR", cors, mods = "year", group = "class")
spec("dat.hasselblad1998", dat.hasselblad1998, "PLO", props, group = "trt")
spec("dat.molloy2014", dat.molloy2014, "COR", cors, options = list(vtype = "AV"), tag = "+AV", analyse_it = FALSE)

# --- data sets that come as yi/vi (or an SE) --------------------------------------------------------------
yv <- function(dataset, data, yi, vi = NULL, sei = NULL, mods = NULL, group = NULL, methods = METHODS) {
  datasets_used <<- union(datasets_used, dataset)
  v <- if (!is.null(vi)) data[[vi]] else data[[sei]]^2
  analyse(dataset, data[[yi]], v, mods = if (is.null(mods)) NULL else data[, mods, drop = FALSE],
          group = if (is.null(group)) NULL else data[[group]], methods = methods,
          source = sprintf("metadat::%s (%s, %s)", dataset, yi, if (!is.null(vi)) vi else paste0(sei, "^2")))
}
yv("dat.raudenbush1985", dat.raudenbush1985, "yi", "vi", mods = "weeks", group = "tester")
yv("dat.bangertdrowns2004", dat.bangertdrowns2004, "yi", "vi", mods = c("length", "grade"), group = "meta")
yv("dat.konstantopoulos2011", dat.konstantopoulos2011, "yi", "vi", mods = "year")
yv("dat.hackshaw1998", dat.hackshaw1998, "yi", "vi", mods = "year", group = "design")
yv("dat.begg1989", dat.begg1989, "yi", "vi", group = "trt")
yv("dat.baskerville2012", dat.baskerville2012, "smd", sei = "se", mods = c("blind", "itt"))
yv("dat.michael2013", dat.michael2013, "yi", "vi")
yv("dat.tannersmith2016", dat.tannersmith2016, "yi", "vi", mods = "propmale")
yv("dat.assink2016", dat.assink2016, "yi", "vi", mods = "year", group = "deltype")
yv("dat.knapp2017", dat.knapp2017, "yi", "vi", group = "task")
yv("dat.lopez2019", dat.lopez2019, "diff", sei = "se", mods = c("length", "sessions"), group = "scale")
yv("dat.berkey1998", dat.berkey1998, "yi", "vi", mods = "year", group = "outcome")
yv("dat.kalaian1996", dat.kalaian1996, "yi", "vi", mods = "hrs", group = "outcome")
yv("dat.riley2003", dat.riley2003, "yi", "vi", group = "outcome")
yv("dat.pignon2000", transform(dat.pignon2000, yi = OmE / V, vi = 1 / V), "yi", "vi", group = "grp")
yv("dat.white2020", transform(dat.white2020, zi = atanh(r), vzi = 1 / (n - 3)), "zi", "vzi",
   mods = "n", group = "class")

out <- list(metafor = as.character(packageVersion("metafor")), metadat = as.character(packageVersion("metadat")),
            R = R.version.string, created = format(Sys.Date()),
            note = paste("Written by scripts/metafor_reference_univariate.R; every figure from the metafor call",
                         "named in its case. Calls metafor refused (e.g. PM with no root in [0, tau2.max]) are left out."),
            refused = n_errors, datasets = sort(datasets_used), escalc = escalc_cases, inputs = inputs, cases = cases)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", null = "null"),
           "tests/evidence/reference/metafor_univariate.json")
cat(sprintf("%d data sets, %d escalc cases, %d model cases, %d calls refused\n", length(datasets_used),
            length(escalc_cases), length(cases), n_errors))
