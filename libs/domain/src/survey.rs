//! Survey responses: CSAT and NPS, linked to a ticket, a campaign or nothing.
