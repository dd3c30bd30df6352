//! The `kizuna.v1.LoyaltyService` handlers: validate, build the domain
//! command, run it, reply.
//!
//! Replies carry what the command decided (points earned, lots taken, the
//! coupon code). A retry is answered from the events the first run appended,
//! read back by their derived ids, so it gets the first answer even when the
//! state has moved on since.

use crate::convert;
use kizuna_command::{
    Attempt, CommandError, CommandMeta, CommandRunner, Committed, Decision, Plan, domain_status,
};
use kizuna_domain::customer::{self, Customer};
use kizuna_domain::loyalty::{
    AdjustPoints, EarningRuleSet, EarningRules, EarningRulesCommand, EarningRulesEvent, Enrol,
    Loyalty, LoyaltyCommand, LoyaltyEvent, RedeemPoints, RefundPurchase, earning_rules_stream,
    loyalty_stream,
};
use kizuna_domain::reward::{
    self, Coupon, CouponCommand, CouponEvent, DefineReward, RedeemCoupon, Reward, RewardCommand,
    canonical_coupon_code, coupon_stream, reward_stream,
};
use kizuna_domain::{Decider, DerivedIds, DomainError, pb};
use kizuna_eventlog::ExpectedVersion;
use pb::loyalty_service_server::LoyaltyService;
use std::sync::Mutex;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The LoyaltyService implementation.
#[derive(Clone)]
pub struct LoyaltyApi {
    runner: CommandRunner,
}

impl std::fmt::Debug for LoyaltyApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoyaltyApi").finish_non_exhaustive()
    }
}

/// How many times a command is decided in all when concurrent appends keep
/// moving its streams. One account takes purchases from every channel and
/// store at once; with N concurrent writers a command loses at most N - 1
/// races, so the runner's default of 8 would turn bursts on one account into
/// ABORTED.
pub const MAX_ATTEMPTS: u32 = 32;

/// Enrolment: only a registered customer who was not merged away joins
/// (the customer stream is read, nothing is appended to it).
struct EnrolMember {
    customer_id: Uuid,
    programme_id: String,
}

impl Decision for EnrolMember {
    async fn plan(&self, attempt: &mut Attempt<'_>) -> Result<Plan, CommandError> {
        // The account first: the caller's expected version is about it.
        let account = attempt
            .load::<Loyalty>(&loyalty_stream(self.customer_id))
            .await?;
        let person = attempt
            .load::<Customer>(&customer::stream_name(self.customer_id))
            .await?;
        customer::ensure_live(&person.state, self.customer_id)?;
        let events = attempt.decide(
            &account,
            &LoyaltyCommand::Enrol(Enrol {
                customer_id: self.customer_id,
                programme_id: self.programme_id.clone(),
            }),
        )?;
        Ok(Plan::new().append_to(&account, Some(self.customer_id), &events))
    }
}

impl LoyaltyApi {
    pub(crate) fn new(runner: CommandRunner) -> Self {
        Self {
            runner: runner.with_max_attempts(MAX_ATTEMPTS),
        }
    }
}

/// What the last attempt of a [`Capture`] saw and decided.
struct Seen<D: Decider> {
    state: D::State,
    events: Vec<D::Event>,
}

/// A one-stream command whose decided events (and the state they were
/// decided on) the handler needs for its reply. Events are tagged with the
/// customer `tag` finds in the state, or `customer_id`.
struct Capture<D: Decider> {
    stream: String,
    customer_id: Option<Uuid>,
    tag: fn(&D::State) -> Option<Uuid>,
    command: D::Command,
    seen: Mutex<Option<Seen<D>>>,
}

fn no_tag<S>(_: &S) -> Option<Uuid> {
    None
}

impl<D: Decider> Capture<D> {
    fn new(stream: String, customer_id: Option<Uuid>, command: D::Command) -> Self {
        Self {
            stream,
            customer_id,
            tag: no_tag::<D::State>,
            command,
            seen: Mutex::new(None),
        }
    }

    fn take(&self) -> Option<Seen<D>> {
        self.seen.lock().ok().and_then(|mut s| s.take())
    }
}

impl<D: Decider> Decision for Capture<D> {
    async fn plan(&self, attempt: &mut Attempt<'_>) -> Result<Plan, CommandError> {
        let loaded = attempt.load::<D>(&self.stream).await?;
        let events = attempt.decide(&loaded, &self.command)?;
        let customer_id = self.customer_id.or_else(|| (self.tag)(&loaded.state));
        let plan = Plan::new().append_to(&loaded, customer_id, &events);
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(Seen {
                state: loaded.state,
                events,
            });
        }
        Ok(plan)
    }
}

/// ClaimReward: the account (primary), then the reward, decided together by
/// [`reward::claim`]; the plan appends to both with the versions they were
/// decided on and creates the coupon stream.
struct ClaimDecision {
    customer_id: Uuid,
    reward_id: Uuid,
    seen: Mutex<Option<reward::Claim>>,
}

impl Decision for ClaimDecision {
    async fn plan(&self, attempt: &mut Attempt<'_>) -> Result<Plan, CommandError> {
        let account = attempt
            .load::<Loyalty>(&loyalty_stream(self.customer_id))
            .await?;
        let reward_loaded = attempt
            .load::<Reward>(&reward_stream(self.reward_id))
            .await?;
        let claim = reward::claim(
            &account.state,
            &reward_loaded.state,
            self.customer_id,
            &mut attempt.context(),
        )
        .map_err(|e| match e {
            DomainError::NotFound { kind: "reward", .. } => {
                DomainError::not_found("reward", self.reward_id)
            }
            DomainError::NotFound { kind, .. } => DomainError::not_found(kind, self.customer_id),
            other => other,
        })?;
        let customer = Some(self.customer_id);
        let plan = Plan::new()
            .append_to(&account, customer, &claim.account)
            .append_to(&reward_loaded, customer, &claim.reward)
            .append(
                coupon_stream(&claim.coupon_code),
                ExpectedVersion::NoStream,
                customer,
                &claim.coupon,
            );
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(claim);
        }
        Ok(plan)
    }
}

/// A NOT_FOUND from a decider that cannot know the id it was asked about
/// (an empty stream), named with `id`.
fn name_not_found(e: CommandError, id: impl ToString) -> CommandError {
    match e {
        CommandError::Domain(DomainError::NotFound { kind, .. }) => {
            CommandError::Domain(DomainError::not_found(kind, id))
        }
        other => other,
    }
}

fn meta_of<T>(
    request: &Request<T>,
    command: Option<pb::CommandMetadata>,
) -> Result<CommandMeta, Status> {
    CommandMeta::from_request(command, request.metadata())
}

impl LoyaltyApi {
    /// Runs a [`Capture`]; returns the result and what it decided: the
    /// first run's events when this is a replay, else the events of this
    /// run (empty when it changed nothing), with the state they were decided
    /// on (`None` for a replay).
    async fn capture<D: Decider>(
        &self,
        meta: &CommandMeta,
        decision: Capture<D>,
        id: impl ToString,
    ) -> Result<(Committed, Vec<D::Event>, Option<D::State>), Status> {
        let committed = self
            .runner
            .run(meta, &decision)
            .await
            .map_err(|e| Status::from(name_not_found(e, id)))?;
        if committed.replayed {
            let events = self
                .runner
                .command_events::<D::Event>(meta.command_id, committed.event_types.len())
                .await
                .map_err(Status::from)?;
            return Ok((committed, events, None));
        }
        let seen = decision.take();
        let (events, state) = match seen {
            Some(s) if !committed.streams.is_empty() => (s.events, Some(s.state)),
            Some(s) => (Vec::new(), Some(s.state)),
            None => (Vec::new(), None),
        };
        Ok((committed, events, state))
    }

    /// The earning rules in force: the last event of the rules stream (one
    /// read, however many times the rules were set), or the defaults when
    /// none were ever set.
    async fn rules(&self) -> Result<EarningRuleSet, Status> {
        Ok(self
            .last_rules_event()
            .await?
            .map(|e| EarningRuleSet::from_event(&e))
            .unwrap_or_default())
    }

    async fn last_rules_event(&self) -> Result<Option<pb::LoyaltyEarningRulesSet>, Status> {
        let last = self
            .runner
            .last_event::<EarningRulesEvent>(&earning_rules_stream())
            .await
            .map_err(Status::from)?;
        Ok(last.map(|(EarningRulesEvent::Set(set), _)| set))
    }

    async fn account_command(
        &self,
        meta: &CommandMeta,
        customer_id: Uuid,
        command: LoyaltyCommand,
    ) -> Result<
        (
            Committed,
            Vec<LoyaltyEvent>,
            Option<kizuna_domain::loyalty::LoyaltyState>,
        ),
        Status,
    > {
        self.capture(
            meta,
            Capture::<Loyalty>::new(loyalty_stream(customer_id), Some(customer_id), command),
            customer_id,
        )
        .await
    }
}

fn tier_change(events: &[LoyaltyEvent]) -> Option<pb::LoyaltyTierChange> {
    events.iter().find_map(|e| match e {
        LoyaltyEvent::TierChanged(t) => Some(pb::LoyaltyTierChange {
            from_tier: t.from_tier.clone(),
            to_tier: t.to_tier.clone(),
            reason: t.reason.clone(),
        }),
        _ => None,
    })
}

#[tonic::async_trait]
impl LoyaltyService for LoyaltyApi {
    #[tracing::instrument(name = "LoyaltyService.Enrol", skip_all)]
    async fn enrol(
        &self,
        request: Request<pb::EnrolRequest>,
    ) -> Result<Response<pb::EnrolResponse>, Status> {
        let meta = meta_of(&request, request.get_ref().command.clone())?;
        let req = request.get_ref();
        let customer_id =
            convert::required_id(&req.customer_id, "customer_id").map_err(domain_status)?;
        let committed = self
            .runner
            .run(
                &meta,
                &EnrolMember {
                    customer_id,
                    programme_id: req.programme_id.clone(),
                },
            )
            .await
            .map_err(Status::from)?;
        Ok(Response::new(pb::EnrolResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "LoyaltyService.SetEarningRules", skip_all)]
    async fn set_earning_rules(
        &self,
        request: Request<pb::SetEarningRulesRequest>,
    ) -> Result<Response<pb::SetEarningRulesResponse>, Status> {
        let meta = meta_of(&request, request.get_ref().command.clone())?;
        let rules = convert::earning_rules(request.get_ref()).map_err(domain_status)?;
        let (committed, events, state) = self
            .capture(
                &meta,
                Capture::<EarningRules>::new(
                    earning_rules_stream(),
                    None,
                    EarningRulesCommand::Set(rules),
                ),
                "",
            )
            .await?;
        let version = match (events.first(), state) {
            (Some(EarningRulesEvent::Set(set)), _) => set.version,
            (None, Some(state)) => state.version,
            (None, None) => self.rules().await?.version,
        };
        Ok(Response::new(pb::SetEarningRulesResponse {
            result: Some(committed.to_proto()),
            version,
        }))
    }

    #[tracing::instrument(name = "LoyaltyService.GetEarningRules", skip_all)]
    async fn get_earning_rules(
        &self,
        _request: Request<pb::GetEarningRulesRequest>,
    ) -> Result<Response<pb::GetEarningRulesResponse>, Status> {
        Ok(Response::new(pb::GetEarningRulesResponse {
            rules: self.last_rules_event().await?,
        }))
    }

    #[tracing::instrument(name = "LoyaltyService.RecordPurchase", skip_all)]
    async fn record_purchase(
        &self,
        request: Request<pb::RecordPurchaseRequest>,
    ) -> Result<Response<pb::RecordPurchaseResponse>, Status> {
        let meta = meta_of(&request, request.get_ref().command.clone())?;
        let req = request.get_ref();
        let customer_id =
            convert::required_id(&req.customer_id, "customer_id").map_err(domain_status)?;
        // Validate before spending a read on the rules.
        let mut purchase =
            convert::record_purchase(req, EarningRuleSet::default()).map_err(domain_status)?;
        purchase.rules = self.rules().await?;
        let order_id = purchase.order_id.trim().to_owned();
        let (committed, events, state) = self
            .account_command(&meta, customer_id, LoyaltyCommand::RecordPurchase(purchase))
            .await?;
        let mut reply = pb::RecordPurchaseResponse {
            result: Some(committed.to_proto()),
            tier_change: tier_change(&events),
            ..Default::default()
        };
        let earned = events.iter().find_map(|e| match e {
            LoyaltyEvent::PointsEarned(p) => Some(p),
            _ => None,
        });
        if let Some(p) = earned {
            reply.points_earned = p.points;
            reply.lot_id = if p.points > 0 {
                p.lot_id.clone()
            } else {
                String::new()
            };
            reply.rules_version = p.rules_version;
            reply.expires_at = p.expires_at;
        } else if let Some(p) = state.as_ref().and_then(|s| s.purchases.get(&order_id)) {
            // The same order again: what its first recording earned.
            reply.points_earned = p.points;
            reply.rules_version = p.rules_version;
            if let Some(lot) = p
                .lot_id
                .and_then(|id| state.as_ref()?.lots.iter().find(|l| l.id == id))
            {
                reply.lot_id = lot.id.to_string();
                reply.expires_at = Some(lot.expires_at);
            }
        }
        Ok(Response::new(reply))
    }

    #[tracing::instrument(name = "LoyaltyService.RefundPurchase", skip_all)]
    async fn refund_purchase(
        &self,
        request: Request<pb::RefundPurchaseRequest>,
    ) -> Result<Response<pb::RefundPurchaseResponse>, Status> {
        let meta = meta_of(&request, request.get_ref().command.clone())?;
        let req = request.get_ref();
        let customer_id =
            convert::required_id(&req.customer_id, "customer_id").map_err(domain_status)?;
        let (committed, events, _) = self
            .account_command(
                &meta,
                customer_id,
                LoyaltyCommand::Refund(RefundPurchase {
                    order_id: req.order_id.clone(),
                    amount_minor: req.amount_minor,
                }),
            )
            .await?;
        let (points, shortfall) = events
            .iter()
            .find_map(|e| match e {
                LoyaltyEvent::PointsClawedBack(c) => Some((c.points, c.shortfall)),
                _ => None,
            })
            .unwrap_or((0, 0));
        Ok(Response::new(pb::RefundPurchaseResponse {
            result: Some(committed.to_proto()),
            points_clawed_back: points,
            shortfall,
        }))
    }

    #[tracing::instrument(name = "LoyaltyService.RedeemPoints", skip_all)]
    async fn redeem_points(
        &self,
        request: Request<pb::RedeemPointsRequest>,
    ) -> Result<Response<pb::RedeemPointsResponse>, Status> {
        // Which lots are unexpired is judged at the server's time.
        let meta = meta_of(&request, request.get_ref().command.clone())?.at_server_time()?;
        let req = request.get_ref();
        let customer_id =
            convert::required_id(&req.customer_id, "customer_id").map_err(domain_status)?;
        let (committed, events, _) = self
            .account_command(
                &meta,
                customer_id,
                LoyaltyCommand::Redeem(RedeemPoints {
                    points: req.points,
                    reason: req.reason.clone(),
                }),
            )
            .await?;
        let taken = events
            .into_iter()
            .find_map(|e| match e {
                LoyaltyEvent::PointsRedeemed(r) => Some(r.taken),
                _ => None,
            })
            .unwrap_or_default();
        Ok(Response::new(pb::RedeemPointsResponse {
            result: Some(committed.to_proto()),
            taken,
        }))
    }

    #[tracing::instrument(name = "LoyaltyService.AdjustPoints", skip_all)]
    async fn adjust_points(
        &self,
        request: Request<pb::AdjustPointsRequest>,
    ) -> Result<Response<pb::AdjustPointsResponse>, Status> {
        // Which lots are unexpired is judged at the server's time.
        let meta = meta_of(&request, request.get_ref().command.clone())?.at_server_time()?;
        let req = request.get_ref();
        let customer_id =
            convert::required_id(&req.customer_id, "customer_id").map_err(domain_status)?;
        if meta.actor.trim().is_empty() {
            return Err(domain_status(DomainError::invalid(
                "command.actor",
                "is required: who makes the adjustment",
            )));
        }
        let rules = if req.points > 0 {
            self.rules().await?
        } else {
            EarningRuleSet::default()
        };
        let (committed, events, _) = self
            .account_command(
                &meta,
                customer_id,
                LoyaltyCommand::Adjust(AdjustPoints {
                    points: req.points,
                    reason: req.reason.clone(),
                    actor: meta.actor.clone(),
                    rules,
                }),
            )
            .await?;
        let lot_id = events
            .into_iter()
            .find_map(|e| match e {
                LoyaltyEvent::PointsAdjusted(a) => Some(a.lot_id),
                _ => None,
            })
            .unwrap_or_default();
        Ok(Response::new(pb::AdjustPointsResponse {
            result: Some(committed.to_proto()),
            lot_id,
        }))
    }

    #[tracing::instrument(name = "LoyaltyService.GetLoyaltyAccount", skip_all)]
    async fn get_loyalty_account(
        &self,
        request: Request<pb::GetLoyaltyAccountRequest>,
    ) -> Result<Response<pb::GetLoyaltyAccountResponse>, Status> {
        let customer_id = convert::required_id(&request.get_ref().customer_id, "customer_id")
            .map_err(domain_status)?;
        let loaded = self
            .runner
            .load::<Loyalty>(&loyalty_stream(customer_id))
            .await
            .map_err(Status::from)?;
        let (Some(_), Some(version)) = (loaded.state.customer_id, loaded.version) else {
            return Err(domain_status(DomainError::not_found(
                "loyalty account",
                customer_id,
            )));
        };
        Ok(Response::new(pb::GetLoyaltyAccountResponse {
            account: Some(convert::account(&loaded.state)),
            version,
        }))
    }

    #[tracing::instrument(name = "LoyaltyService.DefineReward", skip_all)]
    async fn define_reward(
        &self,
        request: Request<pb::DefineRewardRequest>,
    ) -> Result<Response<pb::DefineRewardResponse>, Status> {
        let meta = meta_of(&request, request.get_ref().command.clone())?;
        let req = request.get_ref();
        let reward_id = convert::optional_id(&req.reward_id, "reward_id")
            .map_err(domain_status)?
            .unwrap_or_else(|| DerivedIds::first(meta.command_id));
        let coupon_validity =
            convert::required_duration("coupon_validity", req.coupon_validity.as_ref())
                .map_err(domain_status)?;
        let committed = self
            .runner
            .execute_new::<Reward>(
                &meta,
                &reward_stream(reward_id),
                None,
                &RewardCommand::Define(DefineReward {
                    reward_id,
                    name: req.name.clone(),
                    points_cost: req.points_cost,
                    stock: req.stock,
                    per_customer_limit: req.per_customer_limit,
                    coupon_validity,
                }),
            )
            .await
            .map_err(Status::from)?;
        Ok(Response::new(pb::DefineRewardResponse {
            reward_id: committed
                .created_id(reward::REWARD_CATEGORY)
                .unwrap_or(reward_id)
                .to_string(),
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "LoyaltyService.RestockReward", skip_all)]
    async fn restock_reward(
        &self,
        request: Request<pb::RestockRewardRequest>,
    ) -> Result<Response<pb::RestockRewardResponse>, Status> {
        let meta = meta_of(&request, request.get_ref().command.clone())?;
        let req = request.get_ref();
        let reward_id = convert::required_id(&req.reward_id, "reward_id").map_err(domain_status)?;
        let (committed, _, _) = self
            .capture(
                &meta,
                Capture::<Reward>::new(
                    reward_stream(reward_id),
                    None,
                    RewardCommand::Restock {
                        quantity: req.quantity,
                    },
                ),
                reward_id,
            )
            .await?;
        Ok(Response::new(pb::RestockRewardResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "LoyaltyService.RetireReward", skip_all)]
    async fn retire_reward(
        &self,
        request: Request<pb::RetireRewardRequest>,
    ) -> Result<Response<pb::RetireRewardResponse>, Status> {
        let meta = meta_of(&request, request.get_ref().command.clone())?;
        let req = request.get_ref();
        let reward_id = convert::required_id(&req.reward_id, "reward_id").map_err(domain_status)?;
        let (committed, _, _) = self
            .capture(
                &meta,
                Capture::<Reward>::new(
                    reward_stream(reward_id),
                    None,
                    RewardCommand::Retire {
                        reason: req.reason.clone(),
                    },
                ),
                reward_id,
            )
            .await?;
        Ok(Response::new(pb::RetireRewardResponse {
            result: Some(committed.to_proto()),
        }))
    }

    #[tracing::instrument(name = "LoyaltyService.GetReward", skip_all)]
    async fn get_reward(
        &self,
        request: Request<pb::GetRewardRequest>,
    ) -> Result<Response<pb::GetRewardResponse>, Status> {
        let reward_id = convert::required_id(&request.get_ref().reward_id, "reward_id")
            .map_err(domain_status)?;
        let loaded = self
            .runner
            .load::<Reward>(&reward_stream(reward_id))
            .await
            .map_err(Status::from)?;
        let (Some(reward), Some(version)) = (convert::reward(&loaded.state), loaded.version) else {
            return Err(domain_status(DomainError::not_found("reward", reward_id)));
        };
        Ok(Response::new(pb::GetRewardResponse {
            reward: Some(reward),
            version,
        }))
    }

    #[tracing::instrument(name = "LoyaltyService.ClaimReward", skip_all)]
    async fn claim_reward(
        &self,
        request: Request<pb::ClaimRewardRequest>,
    ) -> Result<Response<pb::ClaimRewardResponse>, Status> {
        // Which lots are unexpired is judged at the server's time.
        let meta = meta_of(&request, request.get_ref().command.clone())?.at_server_time()?;
        let req = request.get_ref();
        let customer_id =
            convert::required_id(&req.customer_id, "customer_id").map_err(domain_status)?;
        let reward_id = convert::required_id(&req.reward_id, "reward_id").map_err(domain_status)?;
        let decision = ClaimDecision {
            customer_id,
            reward_id,
            seen: Mutex::new(None),
        };
        let committed = self
            .runner
            .run(&meta, &decision)
            .await
            .map_err(Status::from)?;
        let issued = if committed.replayed {
            self.runner
                .command_events::<CouponEvent>(meta.command_id, committed.event_types.len())
                .await?
                .into_iter()
                .find_map(|e| match e {
                    CouponEvent::Issued(i) => Some(i),
                    CouponEvent::Redeemed(_) => None,
                })
        } else {
            decision
                .seen
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .and_then(|c| c.coupon.into_iter().next())
                .and_then(|e| match e {
                    CouponEvent::Issued(i) => Some(i),
                    CouponEvent::Redeemed(_) => None,
                })
        };
        // No coupon among the id's events: its first command was not a claim.
        let issued = issued.ok_or_else(|| Status::from(CommandError::reused_command_id()))?;
        Ok(Response::new(pb::ClaimRewardResponse {
            result: Some(committed.to_proto()),
            coupon_code: issued.code,
            expires_at: issued.expires_at,
            points: issued.points,
        }))
    }

    #[tracing::instrument(name = "LoyaltyService.RedeemCoupon", skip_all)]
    async fn redeem_coupon(
        &self,
        request: Request<pb::RedeemCouponRequest>,
    ) -> Result<Response<pb::RedeemCouponResponse>, Status> {
        // Whether the coupon has expired is judged at the server's time.
        let meta = meta_of(&request, request.get_ref().command.clone())?.at_server_time()?;
        let req = request.get_ref();
        let code = canonical_coupon_code("code", &req.code).map_err(domain_status)?;
        let customer_id =
            convert::optional_id(&req.customer_id, "customer_id").map_err(domain_status)?;
        let mut decision = Capture::<Coupon>::new(
            coupon_stream(&code),
            None,
            CouponCommand::Redeem(RedeemCoupon {
                code: code.clone(),
                customer_id,
                channel: req.channel.clone(),
                order_id: req.order_id.clone(),
            }),
        );
        decision.tag = |s| {
            s.issued
                .as_ref()
                .and_then(|i| Uuid::try_parse(&i.customer_id).ok())
        };
        let (committed, events, _) = self.capture(&meta, decision, &code).await?;
        let reward_id = events
            .into_iter()
            .find_map(|e| match e {
                CouponEvent::Redeemed(r) => Some(r.reward_id),
                CouponEvent::Issued(_) => None,
            })
            .unwrap_or_default();
        Ok(Response::new(pb::RedeemCouponResponse {
            result: Some(committed.to_proto()),
            reward_id,
        }))
    }

    #[tracing::instrument(name = "LoyaltyService.GetCoupon", skip_all)]
    async fn get_coupon(
        &self,
        request: Request<pb::GetCouponRequest>,
    ) -> Result<Response<pb::GetCouponResponse>, Status> {
        let code = canonical_coupon_code("code", &request.get_ref().code).map_err(domain_status)?;
        let loaded = self
            .runner
            .load::<Coupon>(&coupon_stream(&code))
            .await
            .map_err(Status::from)?;
        let (Some(coupon), Some(version)) = (convert::coupon(&loaded.state), loaded.version) else {
            return Err(domain_status(DomainError::not_found("coupon", code)));
        };
        Ok(Response::new(pb::GetCouponResponse {
            coupon: Some(coupon),
            version,
        }))
    }
}
