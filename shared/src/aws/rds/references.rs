//! Whether the groups a spec names exist: its DB subnet groups, parameter groups and option groups, asked
//! of RDS before a plan, so that a name that is wrong is refused naming its field before anything changes
//! (RDS itself would refuse only at CreateDBInstance or ModifyDBInstance, half-way through an apply). AWS
//! answers a name it does not know with its not-found fault; an empty list (moto's answer for a parameter
//! group) means the same.

use super::Rds;
use super::error::{RdsError, or_missing};
use crate::domain::spec::RdsSpec;

/// The codes RDS answers for each kind of group that does not exist.
const NO_SUBNET_GROUP: [&str; 2] = ["DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound"];
const NO_PARAMETER_GROUP: [&str; 2] = ["DBParameterGroupNotFound", "DBParameterGroupNotFoundFault"];
const NO_OPTION_GROUP: [&str; 2] = ["OptionGroupNotFoundFault", "OptionGroupNotFound"];

impl Rds {
    /// The groups `db` names that RDS does not know in this Region, as (field, what is wrong).
    pub async fn missing_groups(
        &self,
        db: &RdsSpec,
    ) -> Result<Vec<(&'static str, String)>, RdsError> {
        let mut missing = Vec::new();
        if let Some(name) = &db.db_subnet_group {
            let answer = self
                .client
                .describe_db_subnet_groups()
                .db_subnet_group_name(name)
                .send()
                .await;
            if or_missing("DescribeDBSubnetGroups", &NO_SUBNET_GROUP, answer)?
                .is_none_or(|out| out.db_subnet_groups().is_empty())
            {
                missing.push((
                    "db_subnet_group",
                    format!("no DB subnet group \"{name}\" in this Region"),
                ));
            }
        }
        if let Some(name) = &db.parameter_group {
            let answer = self
                .client
                .describe_db_parameter_groups()
                .db_parameter_group_name(name)
                .send()
                .await;
            if or_missing("DescribeDBParameterGroups", &NO_PARAMETER_GROUP, answer)?
                .is_none_or(|out| out.db_parameter_groups().is_empty())
            {
                missing.push((
                    "parameter_group",
                    format!("no DB parameter group \"{name}\" in this Region"),
                ));
            }
        }
        if let Some(name) = &db.option_group {
            let answer = self
                .client
                .describe_option_groups()
                .option_group_name(name)
                .send()
                .await;
            if or_missing("DescribeOptionGroups", &NO_OPTION_GROUP, answer)?
                .is_none_or(|out| out.option_groups_list().is_empty())
            {
                missing.push((
                    "option_group",
                    format!("no option group \"{name}\" in this Region"),
                ));
            }
        }
        Ok(missing)
    }
}
